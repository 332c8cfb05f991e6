"""The ``--delete-enabled/--write-enabled/--read-enabled/--list-enabled B`` options of the update commands."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..oci.locks import LOCK_FLAGS
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


#: The lock options' values as given (``None``: not given), in the order of the lock table.
LockOptions = tuple[str | None, str | None, str | None, str | None]

_LOCK_PARAMETERS = [
    inspect.Parameter(
        flag.column,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[str | None, typer.Option(flag.option, metavar="BOOL", help=flag.help)],
    )
    for flag in LOCK_FLAGS
]


def with_lock_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Give an update command the four lock options, one per flag of the lock table; the command receives their
    values as its ``locks: LockOptions`` parameter."""
    signature = inspect.signature(fn, eval_str=True)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        locks = tuple(kwargs.pop(parameter.name) for parameter in _LOCK_PARAMETERS)
        fn(*args, locks=locks, **kwargs)

    parameters = [*(p for p in signature.parameters.values() if p.name != "locks"), *_LOCK_PARAMETERS]
    # typer reads the command's options from its signature, as for the common options in :mod:`.options`.
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__
    return wrapper


def lock_changes(delete: str | None, write: str | None, read: str | None, list_: str | None) -> dict[str, Any]:
    """The ``can_*`` keyword arguments of an update call; at least one must be given."""
    values = (delete, write, read, list_)
    given = {flag: parse_bool(value, flag.option) for flag, value in zip(LOCK_FLAGS, values, strict=True)}
    changes = {flag.attribute: value for flag, value in given.items() if value is not None}
    if not changes:
        options = ", ".join(flag.option for flag in LOCK_FLAGS[:-1])
        raise UsageError(f"nothing to update: give {options} or {LOCK_FLAGS[-1].option}")
    return changes


def update_locks(
    options: GlobalOptions,
    registry: str | None,
    update: Callable[..., Any],
    to_dict: Callable[[Any], dict[str, Any]],
    flags: LockOptions,
) -> None:
    """Apply the lock options ``flags`` (delete, write, read, list) with ``update(client, **changes)`` and print the
    properties it returns."""
    changes = lock_changes(*flags)
    show_properties(options, registry, lambda client: update(client, **changes), to_dict)
