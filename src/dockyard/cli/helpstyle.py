"""Help that reads like docker's and git's: ``Usage: dockyard tag show [OPTIONS] REF``, flags without a type
(``--quiet``, not ``--quiet <bool>``), option values as upper-case metavars (``--registry HOST``).

typer builds the click parameters itself and offers no hook for their help text, so :func:`restyle` gives the
finished command tree's parameters the subclasses below, which change how help shows them and when their
values' converters are built (:func:`~dockyard.cli.coercion.deferred_runtime_param`: pydantic only for a
value that needs it).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

from .coercion import deferred_runtime_param

try:  # recent typer versions vendor their own click; older ones use click itself
    from typer._click.core import Context
except ImportError:  # pragma: no cover
    from click import Context  # type: ignore[assignment]

#: typer's type labels (``<str>``) as the metavars click and docker use.
_TYPE_METAVARS = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH", "bool": "BOOL"}


class HelpArgument(TyperArgument):
    """A positional argument shown by its metavar alone: ``REF`` (required), ``[FILE...]`` (optional)."""

    get_runtime_param = deferred_runtime_param

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"


class HelpOption(TyperOption):
    """An option shown with an upper-case metavar, or nothing at all for an on/off flag."""

    get_runtime_param = deferred_runtime_param

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        label = (self.display_type(ctx) or "").strip("<>")
        if "|" in label:
            return label
        return _TYPE_METAVARS.get(label, label.upper())


def restyle(command: Any) -> Any:
    """Give every parameter of ``command`` and its subcommands the help style above; returns ``command``.

    Subcommands held in a plain dict are restyled now; a lazy group (:mod:`dockyard.cli.lazy`) restyles each
    of its commands when it loads it."""
    help_option = command.get_help_option(Context(command))  # created once and cached by the command
    for param in [*getattr(command, "params", []), help_option]:
        if type(param) is TyperArgument:
            param.__class__ = HelpArgument
        elif type(param) is TyperOption:
            param.__class__ = HelpOption
    children = getattr(command, "commands", None)
    if isinstance(children, dict):
        for child in children.values():
            restyle(child)
    return command
