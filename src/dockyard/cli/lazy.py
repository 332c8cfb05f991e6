"""Commands loaded when they run: the root group of the ``dockyard`` app imports a command's module only when
that command is asked for (to run it, to show its help, to complete it), so ``dockyard tag list`` loads the
``tag`` module and no other.

:class:`LazyGroup` is the typer group class of the root app; its ``commands`` is a :class:`LazyCommands`
mapping of command name to the module that registers it (:data:`dockyard.cli.app.COMMANDS`). Every module
has a ``register(app)`` function that adds its commands to a typer app.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

from .helpstyle import restyle


def load_module_commands(module: str) -> dict[str, Any]:
    """The click commands ``module``'s ``register`` adds to an app, by name, styled for help."""
    sub_app = typer.Typer()
    importlib.import_module(module).register(sub_app)
    group = typer.main.get_group(sub_app)
    return {name: restyle(command) for name, command in group.commands.items()}


class LazyCommands(MutableMapping[str, Any]):
    """Command name -> click command, each module imported on the first lookup of one of its commands.

    Iterating lists the names of the index (no import); commands added later (``add_command``) come after them.
    """

    def __init__(self, index: Mapping[str, str]) -> None:
        self._index = dict(index)
        self._loaded: dict[str, dict[str, Any]] = {}
        self._added: dict[str, Any] = {}

    def _module_commands(self, module: str) -> dict[str, Any]:
        if module not in self._loaded:
            self._loaded[module] = load_module_commands(module)
        return self._loaded[module]

    def __getitem__(self, name: str) -> Any:
        if name in self._added:
            return self._added[name]
        module = self._index[name]
        try:
            return self._module_commands(module)[name]
        except KeyError:
            raise RuntimeError(f"{module} does not register the command {name!r} its index entry names") from None

    def __setitem__(self, name: str, command: Any) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        if name in self._added:
            del self._added[name]
        else:
            del self._index[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._index
        yield from (name for name in self._added if name not in self._index)

    def __len__(self) -> int:
        return len(self._index) + sum(1 for name in self._added if name not in self._index)

    def __contains__(self, name: object) -> bool:
        return name in self._added or name in self._index


class LazyGroup(TyperGroup):
    """A typer group whose subcommands come from an index of name -> module (set :attr:`index` on a subclass)."""

    #: Command name -> the module whose ``register`` adds it, in the order help lists them.
    index: Mapping[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        added = self.commands
        self.commands = LazyCommands(self.index)
        self.commands.update(added)

    def list_commands(self, ctx: Any) -> list[str]:
        """The command names, without importing their modules."""
        return list(self.commands)
