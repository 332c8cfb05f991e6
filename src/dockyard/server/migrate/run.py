"""One migration: check both ends, copy the blobs, then the metadata, then compare the two registries.

Blobs go first, so a manifest never reaches the destination before the blobs it names. Nothing at the
destination is ever deleted, and the source is only read. Running the same migration again is safe and cheap:
blobs the destination already holds with the right size are not sent again and every metadata row is an
idempotent upsert by its natural key (there is no progress record to get out of step with the data).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ...workflows.progress import TransferProgress
from ..storage import schema
from ..storage.factory import is_object_storage, open_stores, storage_folder
from ..storage.protocols import BlobStore, StoreUnavailableError, UploadStore
from ..storage.stores import metadata_url
from . import rows, verify
from .blobs import BlobTally, copy_blobs


class MigrateError(Exception):
    """The migration cannot start, or failed (the message says why; ``report`` holds what was done)."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Place:
    """One end of a migration: a metadata URL and a storage URL."""

    metadata: str
    storage: str

    def shown(self) -> dict[str, str]:
        """The URLs as they may be printed (no password)."""
        url = sa.engine.make_url(schema.engine_url(self.metadata)).render_as_string(hide_password=True)
        return {"metadata": url.replace("postgresql+psycopg://", "postgresql://"), "storage": self.storage}


def data_dir_place(data_dir: Path) -> Place:
    """What ``dockyard serve --data-dir DIR`` uses by default: ``DIR/metadata.db`` and ``DIR`` for blobs."""
    return Place(metadata_url(None, data_dir), str(Path(data_dir).resolve()))


def _engine(url: str, *, read_only: bool = False) -> sa.Engine:
    path = schema.sqlite_path(url)
    if read_only and path is not None:
        # The source is only read: SQLite opens it read-only, so not even a journal is written next to it.
        return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=sa.pool.NullPool)
    return sa.create_engine(schema.engine_url(url), poolclass=sa.pool.NullPool)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _source_metadata(url: str) -> sa.Engine:
    try:
        url = metadata_url(url, Path("."))
    except ValueError as exc:
        raise MigrateError(f"--from-metadata: {exc}") from None
    path = schema.sqlite_path(url)
    if path is not None and not path.is_file():
        raise MigrateError(f"--from-metadata: there is no database at {path}")
    try:
        schema.check(url)
    except schema.SchemaError as exc:
        raise MigrateError(f"--from-metadata: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        raise MigrateError(f"cannot read the source metadata database: {_reason(exc)}") from None
    return _engine(url, read_only=True)


def _dest_metadata(url: str, *, create: bool) -> sa.Engine:
    try:
        url = metadata_url(url, Path("."))
    except ValueError as exc:
        raise MigrateError(f"--to-metadata: {exc}") from None
    path = schema.sqlite_path(url)
    if not create and path is not None and not path.is_file():
        raise MigrateError(f"--to-metadata: there is no database at {path}")
    try:
        schema.upgrade(url) if create else schema.check(url)
    except schema.SchemaError as exc:
        raise MigrateError(f"--to-metadata: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        raise MigrateError(f"cannot use the destination metadata database: {_reason(exc)}") from None
    return _engine(url)


def _existing_blobs(url: str, flag: str) -> BlobStore:
    """The blob store at ``url``, opened without creating anything (and streaming, never redirecting)."""
    try:
        if is_object_storage(url):
            return open_stores(url, Path("."), redirect=False)[0]
        folder = storage_folder(url, Path("."))
    except ValueError as exc:
        raise MigrateError(f"{flag}: {exc}") from None
    from ..storage.blobs import FileBlobStore

    if not (folder / "blobs").is_dir():
        raise MigrateError(f"{flag}: {folder} holds no registry's blobs (no blobs/ folder in it)")
    return FileBlobStore(folder)


def _dest_stores(url: str) -> tuple[BlobStore, UploadStore]:
    """The destination's blob and upload stores (a folder is created), checked writable."""
    try:
        blobs, uploads = open_stores(url, Path("."), redirect=False)
        blobs.check_writable()
    except (ValueError, OSError) as exc:
        raise MigrateError(f"--to-storage: {exc}") from None
    return blobs, uploads


@dataclass
class Migration:
    """A migration from ``source`` to ``dest``."""

    source: Place
    dest: Place
    jobs: int = 4
    #: Copy into a destination that holds other data too (the source's rows win where both hold one).
    merge: bool = False
    progress: TransferProgress | None = None
    #: Status lines for people (``print`` to standard error, or nothing).
    say: Callable[[str], None] = lambda _: None

    def run(self, *, verify_only: bool = False) -> dict[str, Any]:
        """Migrate (or only compare, with ``verify_only``); the report. :class:`MigrateError` on any failure,
        carrying the report so far."""
        report: dict[str, Any] = {"source": self.source.shown(), "destination": self.dest.shown(),
                                  "merge": self.merge}
        source_engine = _source_metadata(self.source.metadata)
        dest_engine = _dest_metadata(self.dest.metadata, create=not verify_only)
        try:
            source_blobs = _existing_blobs(self.source.storage, "--from-storage")
            if verify_only:
                dest_blobs = _existing_blobs(self.dest.storage, "--to-storage")
            else:
                dest_blobs, dest_uploads = _dest_stores(self.dest.storage)
            if not verify_only:
                self._refuse_foreign(source_engine, dest_engine, report)
                self.say("copying blobs")
                tally = asyncio.run(copy_blobs(source_blobs, dest_blobs, dest_uploads, jobs=self.jobs,
                                               progress=self.progress))
                report["blobs"] = asdict(tally)
                self._check_blobs(tally, report)
                self.say("copying metadata")
                report["metadata"] = self._copy_metadata(source_engine, dest_engine)
            self.say("verifying")
            found = verify.Comparison()
            with source_engine.connect() as source, dest_engine.connect() as dest:
                verify.compare_metadata(source, dest, found)
            verify.compare_blobs(source_blobs, dest_blobs, found)
            report["verification"] = found.as_dict(merge=self.merge)
            if not found.ok(merge=self.merge):
                raise MigrateError(self._verification_failure(found), report)
            return report
        except sa.exc.SQLAlchemyError as exc:
            raise MigrateError(f"the metadata database failed: {_reason(exc)}", report) from None
        except (StoreUnavailableError, OSError) as exc:
            raise MigrateError(f"the blob store failed: {exc}", report) from None
        finally:
            source_engine.dispose()
            dest_engine.dispose()

    def _refuse_foreign(self, source_engine: sa.Engine, dest_engine: sa.Engine, report: dict[str, Any]) -> None:
        if self.merge:
            return
        with source_engine.connect() as source, dest_engine.connect() as dest:
            foreign = verify.foreign_names(source, dest)
        if foreign.extra_examples:
            raise MigrateError(
                f"the destination already holds another registry's data ({foreign.extra_examples[0]} is not in the "
                "source): refusing to mix them; pass --merge to copy into it anyway (nothing there is deleted)",
                report,
            )

    @staticmethod
    def _check_blobs(tally: BlobTally, report: dict[str, Any]) -> None:
        if tally.failed:
            more = f" (and {len(tally.failed) - 1} more)" if len(tally.failed) > 1 else ""
            raise MigrateError(f"{tally.failed[0]}{more}; no metadata was copied: repair or remove it at the "
                               "source and run the same command again", report)

    def _copy_metadata(self, source_engine: sa.Engine, dest_engine: sa.Engine) -> dict[str, int]:
        """Upsert every row of the source into the destination; rows written per kind."""
        writer = rows.Writer(dest_engine)
        written: dict[str, int] = {}
        with source_engine.connect() as source:
            for kind in rows.KINDS:
                ids = rows.source_ids(source, kind) if kind in (rows.REPOSITORIES, rows.TOKENS) else {}
                if kind.per_repository and not writer.repository_ids():
                    writer.load_repository_ids()
                stream = ((key, values, ids.get(key[0])) for key, values in rows.walk(source, kind))
                written[kind.name] = writer.write(kind, stream)
            high = {table: rows.id_high_water(source, table) for table in (rows.REPOSITORIES.table,
                                                                           rows.TOKENS.table)}
            theirs = rows.auth_version(source)
        with dest_engine.begin() as dest:
            rows.write_lock(dest)
            for table, value in high.items():
                rows.raise_id_high_water(dest, table, value)
            ours = rows.auth_version(dest)
            if ours != theirs:
                # Equal to the source's on a fresh copy; above both after a merge, so every cached login is
                # checked again.
                rows.set_auth_version(dest, max(theirs, ours + 1))
        return written

    def _verification_failure(self, found: verify.Comparison) -> str:
        if found.mismatch_count:
            more = f" (and {found.mismatch_count - 1} more)" if found.mismatch_count > 1 else ""
            return f"verification failed: {found.mismatches[0]}{more}"
        return (f"verification failed: the destination holds {found.extra_examples[0]}, which the source does not "
                "(deleted at the source since an earlier run?); migrate never deletes: remove it there, or pass "
                "--merge to accept it")
