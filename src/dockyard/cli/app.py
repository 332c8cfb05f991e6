"""The typer app of the ``dockyard`` console script, and :func:`run`.

The app's commands are listed in :data:`COMMANDS` with the module that registers each; a command's module is
imported only when that command is asked for (:mod:`dockyard.cli.lazy`), so ``dockyard tag list`` loads the
``tag`` module alone. Every failure of every command goes through :func:`run`, which prints one line to
standard error and exits non-zero (see :mod:`dockyard.cli.errors`). :mod:`dockyard.cli.main` imports this
module only when a command needs it (not for ``--version``, nor for a ``--help`` it has cached).
"""

from __future__ import annotations

import sys

import typer

try:  # recent typer versions vendor their own click; older ones use click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click import ClickException  # type: ignore[assignment]

from .errors import EXIT_INTERRUPTED, describe
from .helpstyle import restyle
from .lazy import LazyGroup
from .main import HELP_ARGS
from .options import root_callback

#: Every command of the app, in the order ``dockyard --help`` lists them, with the module (of this package)
#: whose ``register(app)`` adds it.
COMMANDS: dict[str, str] = {
    "serve": "serve",
    "gc": "serve",
    "completion": "completion",
    "migrate": "migrate",
    "purge": "purge",
    "push": "artifacts",
    "pull": "artifacts",
    "copy": "copy",
    "sync": "sync",
    "login": "auth",
    "logout": "auth",
    "digest": "image",
    "config": "image",
    "user": "users",
    "token": "tokens",
    "scope-map": "tokens",
    "db": "db",
    "repo": "repo",
    "tag": "tag",
    "manifest": "manifest",
    "image": "image",
    "index": "index",
    "blob": "blob",
}


class DockyardGroup(LazyGroup):
    """The root group: the commands of :data:`COMMANDS`, each module imported on first use."""

    index = {name: f"{__package__}.{module}" for name, module in COMMANDS.items()}


app = typer.Typer(
    name="dockyard",
    help="Manage images and artifacts in container registries, or run one locally (dockyard serve).",
    cls=DockyardGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

app.callback()(root_callback())


def run(argv: list[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and exit with its status."""
    command = restyle(typer.main.get_command(app))
    recorder = None
    if list(sys.argv[1:] if argv is None else argv) == HELP_ARGS:  # keep a copy for the next time
        from . import helpcache

        recorder = sys.stdout = helpcache.Recorder(sys.stdout)
    try:
        status = command.main(args=argv, prog_name="dockyard", standalone_mode=False)
        if status == EXIT_INTERRUPTED:  # typer turns Ctrl-C in a command into a silent exit status 130
            print("dockyard: interrupted", file=sys.stderr)
    except typer.Exit as exc:
        status = exc.exit_code
    except typer.Abort:
        print("dockyard: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    except ClickException as exc:
        message = " ".join(exc.format_message().split())
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        if message:  # empty after no_args_is_help has printed the help
            print(f"dockyard: error: {message}{hint}", file=sys.stderr)
        status = exc.exit_code
    except KeyboardInterrupt:
        print("dockyard: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        status = 1
    except Exception as exc:
        message, status = describe(exc)
        print(f"dockyard: error: {message}", file=sys.stderr)
    finally:
        if recorder is not None:
            sys.stdout = recorder.stream
    if recorder is not None and status in (0, None):
        from . import helpcache

        helpcache.store(recorder.text)
    sys.exit(status if isinstance(status, int) else 0)
