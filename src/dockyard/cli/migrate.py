"""``dockyard migrate``: move a whole registry between metadata databases and blob stores (e.g. a single host's
data directory into PostgreSQL + S3), resumable and verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import CommandError, UsageError
from .options import GlobalOptions, OutputFormat
from .output import emit_record, print_json, stderr_console

_EXAMPLE = ("Example:\n\n  dockyard migrate --from-data-dir /var/lib/dockyard "
            "--to-metadata postgresql://dockyard@db/registry --to-storage s3://registry-blobs/prod")

_METADATA_HELP = "sqlite:///path/metadata.db or postgresql://user:pass@host:port/db."
_STORAGE_HELP = "A folder (or file:///path), s3://bucket/prefix or az://container/prefix."

FromMetadata = Annotated[str | None, typer.Option("--from-metadata", metavar="URL", show_default=False,
                                                  help=f"The source's metadata database: {_METADATA_HELP}")]
FromStorage = Annotated[str | None, typer.Option("--from-storage", metavar="URL", show_default=False,
                                                 help=f"The source's blob storage: {_STORAGE_HELP}")]
ToMetadata = Annotated[str | None, typer.Option("--to-metadata", metavar="URL", show_default=False,
                                                help=f"The destination's metadata database: {_METADATA_HELP} "
                                                "Created or upgraded to the current schema when needed.")]
ToStorage = Annotated[str | None, typer.Option("--to-storage", metavar="URL", show_default=False,
                                               help=f"The destination's blob storage: {_STORAGE_HELP}")]
FromDataDir = Annotated[Path | None, typer.Option(
    "--from-data-dir", metavar="DIR", show_default=False,
    help="A data directory as the source: its metadata.db and blob folder (what --from-metadata and "
    "--from-storage default to).")]
ToDataDir = Annotated[Path | None, typer.Option(
    "--to-data-dir", metavar="DIR", show_default=False,
    help="A data directory as the destination: its metadata.db and blob folder (what --to-metadata and "
    "--to-storage default to).")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Blobs copied at once.")]
Merge = Annotated[bool, typer.Option("--merge", help="Copy into a destination that already holds other "
                                     "repositories, tokens or scope maps (nothing there is deleted; where both "
                                     "hold the same item, the source's version wins).")]
VerifyOnly = Annotated[bool, typer.Option("--verify-only", help="Copy nothing: only compare source and "
                                          "destination and print the summary.")]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json (the whole report; no "
                                              "progress on standard error).")]


def _place(kind: str, metadata: str | None, storage: str | None, data_dir: Path | None) -> Any:
    from ..server.migrate.run import Place, data_dir_place

    if data_dir is not None:
        default = data_dir_place(data_dir)
        return Place(metadata or default.metadata, storage or default.storage)
    if not metadata or not storage:
        raise UsageError(f"give --{kind}-metadata and --{kind}-storage (or --{kind}-data-dir DIR)")
    return Place(metadata, storage)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report as one flat record for people."""
    found = report.get("verification", {})
    source, dest = found.get("source", {}), found.get("destination", {})
    record: dict[str, Any] = {"source": report["source"]["metadata"] + " + " + report["source"]["storage"],
                              "destination": (report["destination"]["metadata"] + " + "
                                              + report["destination"]["storage"])}
    blobs = report.get("blobs")
    if blobs:
        record["blobs copied"] = f"{blobs['copied']} ({blobs['copied_bytes']} bytes)"
        record["blobs already there"] = blobs["present"]
    for name in (*source.keys(),):
        record[name.replace("_", " ")] = f"{source[name]} at the source, {dest.get(name)} at the destination"
    record["verified"] = "yes" if found.get("ok") else "NO"
    return record


def migrate(
    from_metadata: FromMetadata = None,
    from_storage: FromStorage = None,
    to_metadata: ToMetadata = None,
    to_storage: ToStorage = None,
    from_data_dir: FromDataDir = None,
    to_data_dir: ToDataDir = None,
    jobs: Jobs = 4,
    merge: Merge = False,
    verify_only: VerifyOnly = False,
    output: Output = OutputFormat.table,
) -> None:
    """Move a whole registry (repositories, manifests, tags, blobs, tokens, scope maps) to another metadata
    database and blob storage, then verify it. Safe to run again: it continues where it stopped, and sends no
    blob twice. The source is only read; nothing at the destination is deleted."""
    from ..server.migrate.run import MigrateError, Migration
    from .progress import transfer_progress

    options = GlobalOptions(output=output)
    source = _place("from", from_metadata, from_storage, from_data_dir)
    dest = _place("to", to_metadata, to_storage, to_data_dir)
    console = stderr_console()

    def say(message: str) -> None:
        if not options.json:
            console.print(f"{message} …", markup=False)

    with transfer_progress(options, console=console) as progress:
        migration = Migration(source, dest, jobs=jobs, merge=merge, progress=progress, say=say)
        try:
            report = migration.run(verify_only=verify_only)
        except MigrateError as exc:
            if options.json and exc.report is not None:
                print_json(exc.report)
            raise CommandError(str(exc)) from None
    if options.json:
        print_json(report)
    else:
        emit_record(options, _summary(report))


def register(app: typer.Typer) -> None:
    """Add ``dockyard migrate`` to the CLI."""
    app.command("migrate", epilog=_EXAMPLE)(migrate)
