"""Printing results: rich tables for people (the same text without rich when standard output is not a
terminal), JSON for scripts (``--output json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import IO, TYPE_CHECKING, Any

from ..oci.locks import LOCK_ATTRIBUTES
from . import plaintable
from .connect import open_client
from .options import GlobalOptions
from .refs import Order, top

if TYPE_CHECKING:  # rich is imported when something is printed with it, not with every command
    from rich.console import Console
    from rich.table import Table


def stdout_console() -> Console:
    """A console on standard output; wide and plain when it is not a terminal, so nothing gets cut."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return plain_console()


def plain_console(file: IO[str] | None = None) -> Console:
    """The console of output that is not a terminal (standard output unless ``file``): wide, unstyled."""
    from rich.console import Console

    return Console(file=file, width=plaintable.WIDTH, no_color=True, highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    """A console on standard error (status messages)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 text and enums as their values."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2) + "\n")
    sys.stdout.flush()


def emit_rows(options: GlobalOptions, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """Print a list: a JSON array of the rows, or a table of ``columns`` (``(key, header)`` pairs)."""
    if options.json:
        print_json(list(rows))
        return
    _print_table([header for _, header in columns], [[_cell(row.get(key)) for key, _ in columns] for row in rows])


def emit_record(options: GlobalOptions, record: Mapping[str, Any]) -> None:
    """Print one object: JSON, or a two-column table of its fields."""
    if options.json:
        print_json(dict(record))
        return
    _print_table(None, [[key, _cell(value)] for key, value in record.items()])


def rich_table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> Table:
    """The rich table of ``rows`` under ``header``; without a header, a record: field names (bold) and values."""
    from rich.table import Table

    if header is None:
        table = Table(box=None, show_header=False, show_edge=False, pad_edge=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
    else:
        table = Table(box=None, show_edge=False, pad_edge=False)
        for title in header:
            table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _print_table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> None:
    """Print a table: with rich on a terminal; else as the same text, without loading rich when
    :mod:`dockyard.cli.plaintable` can write it."""
    if not sys.stdout.isatty():
        text = plaintable.render(header, rows)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    stdout_console().print(rich_table(header, rows))


def status(options: GlobalOptions, message: str) -> None:
    """A human status line on standard error (silent with ``--quiet`` or ``--output json``)."""
    if not options.quiet and not options.json:
        stderr_console().print(message, markup=False)


def report(options: GlobalOptions, data: Mapping[str, Any], message: str) -> None:
    """The outcome of a change: ``data`` as JSON with ``--output json``, else ``message`` as a status line."""
    if options.json:
        print_json(dict(data))
    else:
        status(options, message)


def show_properties(
    options: GlobalOptions,
    registry: str | None,
    fetch: Callable[[Any], Any],
    to_dict: Callable[[Any], Mapping[str, Any]],
) -> None:
    """Connect, ``fetch(client)`` a properties model and print it as one record."""
    with open_client(options, registry) as client:
        props = fetch(client)
    emit_record(options, to_dict(props))


def list_properties(
    options: GlobalOptions,
    registry: str | None,
    repository: str,
    lister: Callable[[Any], Callable[..., Any]],
    order: Order | None,
    count: int | None,
    to_dict: Callable[[Any], Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
) -> None:
    """Connect, list ``repository`` with the client method ``lister(client)`` (``order_by`` when ``order`` is
    given), keep the first ``count`` and print them as rows of ``columns``."""
    kwargs = {"order_by": order.sdk_value()} if order else {}
    with open_client(options, registry) as client:
        items = top(lister(client)(repository, **kwargs), count)
    emit_rows(options, [to_dict(item) for item in items], columns)


# -- models as plain dicts ----------------------------------------------------------------------------------------

def _locks(model: Any) -> dict[str, Any]:
    return {name: getattr(model, name, None) for name in LOCK_ATTRIBUTES}


def _times_and_locks(props: Any) -> dict[str, Any]:
    return {"created_on": props.created_on, "last_updated_on": props.last_updated_on, **_locks(props)}


def repository_dict(props: Any) -> dict[str, Any]:
    """``RepositoryProperties`` as a dict."""
    return {
        "name": props.name,
        "manifest_count": props.manifest_count,
        "tag_count": props.tag_count,
        **_times_and_locks(props),
    }


def tag_dict(props: Any) -> dict[str, Any]:
    """``ArtifactTagProperties`` as a dict."""
    return {
        "repository": props.repository_name,
        "name": props.name,
        "digest": props.digest,
        **_times_and_locks(props),
    }


def manifest_dict(props: Any) -> dict[str, Any]:
    """``ArtifactManifestProperties`` as a dict; ``total_size`` is the manifest's bytes plus its blobs' (what the
    registry's ``size_in_bytes`` counts), unlike ``push``'s ``manifest_size``."""
    return {
        "repository": props.repository_name,
        "digest": props.digest,
        "media_type": getattr(props, "media_type", None),
        "total_size": props.size_in_bytes,
        "architecture": props.architecture,
        "os": props.operating_system,
        "tags": list(props.tags or []),
        "created_on": props.created_on,
        "last_updated_on": props.last_updated_on,
        "references": [
            {"digest": r.digest, "architecture": r.architecture, "os": r.operating_system}
            for r in (getattr(props, "references", None) or [])
        ],
        **_locks(props),
    }


def descriptor_dict(desc: Any) -> dict[str, Any]:
    """A referrer's OCI descriptor as a dict: its JSON form, with ``artifactType`` and ``annotations`` always
    present (``null`` and ``{}`` when the descriptor has none), so scripts see the same keys every time."""
    data = dict(desc.to_json())
    return {"artifactType": None, **data, "annotations": data.get("annotations") or {}}
