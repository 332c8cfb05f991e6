"""``dockyard db upgrade``: bring a registry's metadata database to the schema this dockyard uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import CommandError
from .options import MetadataUrl

group = typer.Typer(help="Manage the registry's metadata database.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="The registry's data directory (default: as for "
                                              "dockyard serve).", show_default=False)]

_SAID = {
    "current": "was already at the current schema",
    "empty": "had no schema; created it",
    "unversioned": "was made by a release before migrations; recognised and upgraded in place",
    "older": "had an older schema; upgraded",
    "newer": "is newer than this dockyard",
}


@group.command(epilog="Example:\n\n  dockyard db upgrade --data-dir ./registry-data")
def upgrade(metadata_url: MetadataUrl = None, data_dir: DataDir = None) -> None:
    """Create or upgrade the metadata schema (run once per release before starting the servers of a shared
    PostgreSQL database; safe to run again, and by several hosts at once)."""
    import sqlalchemy as sa

    from ..server.storage import schema
    from ..server.storage.stores import MetadataUrlError
    from ..server.storage.stores import metadata_url as checked_url
    from .serve import _data_dir

    try:
        url = checked_url(metadata_url, _data_dir(data_dir))
        where = sa.engine.make_url(schema.engine_url(url)).render_as_string(hide_password=True)
        before, _ = schema.upgrade(url)
    except (MetadataUrlError, schema.SchemaError) as exc:
        raise CommandError(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise CommandError(f"cannot use the metadata database: {reason}") from None
    typer.echo(f"{where} {_SAID[before]} (revision {schema.HEAD})")


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to the CLI."""
    app.add_typer(group, name="db")
