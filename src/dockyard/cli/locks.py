"""The ``--delete-enabled/--write-enabled/--read-enabled/--list-enabled B`` options of the update commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from .errors import UsageError
from .options import GlobalOptions
from .output import show_properties

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_bool(value: str | None, flag: str) -> bool | None:
    """``true``/``false`` (also yes/no, 1/0, on/off) as a bool; ``None`` when the option was not given."""
    if value is None:
        return None
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise UsageError(f"{flag}: expected true or false, got {value!r}")


DeleteEnabled = Annotated[str | None, typer.Option("--delete-enabled", metavar="BOOL", help="Allow deletes.")]
WriteEnabled = Annotated[str | None, typer.Option("--write-enabled", metavar="BOOL", help="Allow overwrites.")]
ReadEnabled = Annotated[str | None, typer.Option("--read-enabled", metavar="BOOL", help="Allow pulls.")]
ListEnabled = Annotated[str | None, typer.Option("--list-enabled", metavar="BOOL", help="Show in listings.")]


def lock_changes(delete: str | None, write: str | None, read: str | None, list_: str | None) -> dict[str, Any]:
    """The ``can_*`` keyword arguments of an update call; at least one must be given."""
    changes = {
        "can_delete": parse_bool(delete, "--delete-enabled"),
        "can_write": parse_bool(write, "--write-enabled"),
        "can_read": parse_bool(read, "--read-enabled"),
        "can_list": parse_bool(list_, "--list-enabled"),
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise UsageError("nothing to update: give --delete-enabled, --write-enabled, --read-enabled or --list-enabled")
    return changes


def update_locks(
    options: GlobalOptions,
    registry: str | None,
    update: Callable[..., Any],
    to_dict: Callable[[Any], dict[str, Any]],
    flags: tuple[str | None, str | None, str | None, str | None],
) -> None:
    """Apply the lock options ``flags`` (delete, write, read, list) with ``update(client, **changes)`` and print the
    properties it returns."""
    changes = lock_changes(*flags)
    show_properties(options, registry, lambda client: update(client, **changes), to_dict)
