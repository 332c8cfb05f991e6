"""The ``dockyard`` console script: builds the typer app from the command modules."""

from __future__ import annotations

import typer

from . import serve

app = typer.Typer(
    name="dockyard",
    help="Manage images and artifacts in container registries, or run one locally (dockyard serve).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

serve.register(app)


def main() -> None:
    """Entry point of the ``dockyard`` console script."""
    app()
