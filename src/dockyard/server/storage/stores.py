"""Which metadata store a ``--metadata-url`` names: the one place a URL becomes a store.

``sqlite:///path/metadata.db`` (the default: ``metadata.db`` in the data directory) or
``postgresql://user:pass@host:port/db``.
"""

from __future__ import annotations

from pathlib import Path

from .protocols import MetadataStore
from .schema import sqlite_path, sqlite_url

#: The URL schemes a metadata URL may have.
SCHEMES = ("sqlite", "postgresql", "postgres")


class MetadataUrlError(ValueError):
    """A metadata URL this dockyard cannot use (the message says why)."""


def metadata_url(url: str | None, data_dir: Path) -> str:
    """``url`` checked, or the default: the data directory's ``metadata.db``."""
    if not url:
        from .metadata import DB_NAME

        return sqlite_url(Path(data_dir) / DB_NAME)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise MetadataUrlError(
            f"--metadata-url must be sqlite:///path/metadata.db or postgresql://user:pass@host:port/db, not {url!r}"
        )
    if scheme == "sqlite" and sqlite_path(url) is None:
        raise MetadataUrlError(f"--metadata-url {url!r} names no database file (sqlite:///path/metadata.db)")
    return url


def is_sqlite(url: str) -> bool:
    """True for a ``sqlite:///`` URL (the embedded database, which upgrades its own schema)."""
    return url.startswith("sqlite:")


def open_metadata(url: str | None, data_dir: Path) -> MetadataStore:
    """The metadata store of ``url`` (default: SQLite in ``data_dir``)."""
    url = metadata_url(url, data_dir)
    path = sqlite_path(url)
    if path is not None:
        from .metadata import SqliteMetadataStore

        return SqliteMetadataStore(path.parent, path)
    from .postgres import PostgresMetadataStore

    return PostgresMetadataStore(url)
