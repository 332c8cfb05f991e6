"""``dockyard completion bash|zsh|fish``: the shell completion script, to source or to install."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

try:  # recent typer versions vendor their own click; older ones use click itself
    from typer._click.shell_completion import get_completion_class
except ImportError:  # pragma: no cover
    from click.shell_completion import get_completion_class  # type: ignore[assignment]

#: The environment variable the script sets when it asks ``dockyard`` for completions.
COMPLETE_VAR = "_DOCKYARD_COMPLETE"

EXAMPLE = """
source <(dockyard completion bash)
dockyard completion zsh > "${fpath[1]}/_dockyard"
dockyard completion fish > ~/.config/fish/completions/dockyard.fish
"""


class Shell(str, enum.Enum):
    """Shells with a completion script."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def register(app: typer.Typer) -> None:
    """Add ``completion`` to ``app``."""
    lines = EXAMPLE.strip().splitlines()

    @app.command("completion", epilog="Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines))
    def completion(
        ctx: typer.Context,
        shell: Annotated[Shell, typer.Argument(metavar="bash|zsh|fish", help="The shell.", show_default=False)],
    ) -> None:
        """Print the shell completion script for bash, zsh or fish."""
        root = ctx.find_root().command
        script_class = get_completion_class(shell.value)
        if script_class is None:  # pragma: no cover - typer registers all three
            raise typer.BadParameter(f"no completion for {shell.value}")
        typer.echo(script_class(root, {}, "dockyard", COMPLETE_VAR).source())
