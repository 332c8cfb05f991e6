"""The ``dockyard`` console script's entry point, kept light: ``dockyard --version`` answers from here, and
``dockyard --help`` too when its text is cached (:mod:`dockyard.cli.helpcache`); every other command line goes
to the typer app in :mod:`dockyard.cli.app` (imported only then)."""

from __future__ import annotations

import sys
from typing import Any

#: The command line whose output :mod:`dockyard.cli.helpcache` keeps.
HELP_ARGS = ["--help"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dockyard`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if list(args) == ["--version"]:
        from .. import __version__

        print(f"dockyard {__version__}")
        sys.exit(0)
    if list(args) == HELP_ARGS:
        from . import helpcache

        text = helpcache.lookup()
        if text is not None:
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except BrokenPipeError:  # as the app answers it (dockyard.cli.app.run)
                sys.exit(1)
            sys.exit(0)
    from .app import run

    run(argv)


def __getattr__(name: str) -> Any:
    """``app``: the typer app (from :mod:`dockyard.cli.app`), built on first access."""
    if name == "app":
        from .app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
