"""The typer app of the ``dockyard`` console script, built from the command modules, and :func:`run`.

Every failure of every command goes through :func:`run`, which prints one line to standard error and
exits non-zero (see :mod:`dockyard.cli.errors`). :mod:`dockyard.cli.main` imports this module only when a
command needs it (not for ``--version``).
"""

from __future__ import annotations

import sys

import typer

try:  # recent typer versions vendor their own click; older ones use click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click import ClickException  # type: ignore[assignment]
try:
    from click.exceptions import Abort as _ClickAbort
    from click.exceptions import Exit as _ClickExit
except ImportError:  # pragma: no cover
    _ClickAbort, _ClickExit = typer.Abort, typer.Exit  # type: ignore[misc,assignment]

from . import completion, db, migrate, serve, tokens, users
from .errors import EXIT_INTERRUPTED, describe
from .helpstyle import restyle
from .options import root_callback

app = typer.Typer(
    name="dockyard",
    help="Manage images and artifacts in container registries, or run one locally (dockyard serve).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

app.callback()(root_callback())
serve.register(app)
completion.register(app)
users.register(app)
tokens.register(app)
db.register(app)
migrate.register(app)


def _register_commands() -> None:
    from . import artifacts, auth, copy, manifest, purge, repo, sync, tag

    for module in (repo, tag, manifest, purge, artifacts, copy, sync, auth):
        module.register(app)

    from . import blob, image, index

    for module in (image, index, blob):
        module.register(app)


_register_commands()


def run(argv: list[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and exit with its status."""
    command = restyle(typer.main.get_command(app))
    try:
        status = command.main(args=argv, prog_name="dockyard", standalone_mode=False)
        if status == EXIT_INTERRUPTED:  # typer turns Ctrl-C in a command into a silent exit status 130
            print("dockyard: interrupted", file=sys.stderr)
    except (typer.Exit, _ClickExit) as exc:
        status = getattr(exc, "exit_code", 0)
    except (typer.Abort, _ClickAbort):
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
    sys.exit(status if isinstance(status, int) else 0)
