"""The ``dockyard`` console script: builds the typer app from the command modules.

Every failure of every command goes through :func:`main`, which prints one line to standard error and
exits non-zero (see :mod:`dockyard.cli.errors`).
"""

from __future__ import annotations

import sys

import click
import typer

from . import serve
from .errors import EXIT_INTERRUPTED, describe

app = typer.Typer(
    name="dockyard",
    help="Manage images and artifacts in container registries, or run one locally (dockyard serve).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

serve.register(app)


def _register_commands() -> None:
    from . import artifacts, auth, copy, manifest, purge, repo, tag

    for module in (repo, tag, manifest, purge, artifacts, copy, auth):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dockyard`` console script."""
    command = typer.main.get_command(app)
    try:
        status = command.main(args=argv, prog_name="dockyard", standalone_mode=False)
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.exceptions.Abort:
        print("dockyard: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
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
