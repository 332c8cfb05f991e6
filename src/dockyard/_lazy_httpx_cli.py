"""Keep httpx's own command-line module from loading with httpx.

``import httpx`` runs ``from ._main import main``: where click, rich and pygments are installed (typer brings
them) that imports all three, a good share of httpx's import time, for a command line dockyard never uses.
:func:`install` puts a stand-in for ``httpx._main`` in place before httpx is first imported: its ``main``,
and any other name asked of it, load the real module then.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

_NAME = "httpx._main"


def _real() -> ModuleType:
    """The real ``httpx._main``, loaded in place of the stand-in."""
    if isinstance(sys.modules.get(_NAME), _StandIn):
        del sys.modules[_NAME]
    return importlib.import_module(_NAME)


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's command line (the ``httpx`` console script), loaded on first use."""
    return _real().main(*args, **kwargs)


class _StandIn(ModuleType):
    """``httpx._main`` until something other than ``main`` is asked of it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # what the import system asks of any module (``__path__``, ``__spec__`` ...)
            raise AttributeError(name)
        return getattr(_real(), name)


def install() -> None:
    """Put the stand-in in place unless httpx (or its command line) is imported already."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    stand_in = _StandIn(_NAME, __doc__)
    stand_in.main = _main  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
