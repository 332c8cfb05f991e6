"""ACR's four lock flags, named once: the SDK model attribute, the ``changeableAttributes`` wire name, the
server's storage column and the CLI option. In ACR's order: delete, write, read, list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LockFlag:
    """One lock flag under each of its names."""

    attribute: str
    wire: str
    column: str
    option: str
    help: str


LOCK_FLAGS = (
    LockFlag("can_delete", "deleteEnabled", "delete_enabled", "--delete-enabled", "Allow deletes."),
    LockFlag("can_write", "writeEnabled", "write_enabled", "--write-enabled", "Allow overwrites."),
    LockFlag("can_read", "readEnabled", "read_enabled", "--read-enabled", "Allow pulls."),
    LockFlag("can_list", "listEnabled", "list_enabled", "--list-enabled", "Show in listings."),
)
#: The model attributes (``can_delete`` ...), in order.
LOCK_ATTRIBUTES = tuple(flag.attribute for flag in LOCK_FLAGS)
#: Wire name by model attribute.
WIRE_BY_ATTRIBUTE = {flag.attribute: flag.wire for flag in LOCK_FLAGS}
#: Storage column by wire name.
COLUMN_BY_WIRE = {flag.wire: flag.column for flag in LOCK_FLAGS}


def lock_values(
    can_delete: bool | None = None, can_write: bool | None = None, can_read: bool | None = None,
    can_list: bool | None = None,
) -> dict[str, bool | None]:
    """The ``can_*`` keyword arguments as a dict by model attribute."""
    return {"can_delete": can_delete, "can_write": can_write, "can_read": can_read, "can_list": can_list}
