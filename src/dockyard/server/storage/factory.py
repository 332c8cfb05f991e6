"""Which blob and upload stores a ``--storage-url`` names: a path or ``file:///path`` (files in a folder),
``s3://bucket/prefix``, ``az://container/prefix`` or ``gs://bucket/prefix`` (object storage, see :mod:`.objects`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from .blobs import FileBlobStore, FileUploadStore
from .protocols import BlobStore, UploadStore


class StorageUrlError(ValueError):
    """A ``--storage-url`` that names no supported store."""


#: URL schemes served by object storage.
OBJECT_SCHEMES = ("s3", "az", "gs")


def is_object_storage(url: str | None) -> bool:
    """True when ``url`` names object storage rather than a folder."""
    return url is not None and urlsplit(url).scheme in OBJECT_SCHEMES


def storage_folder(url: str | None, data_dir: Path) -> Path:
    """The folder a path or ``file://`` URL names (``data_dir`` when ``url`` is ``None``)."""
    if url is None:
        return Path(data_dir)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        raise StorageUrlError(f"unsupported storage URL scheme {parts.scheme!r} (a path, file://, s3://, az:// or gs://)")
    return Path(url)


def open_stores(url: str | None, data_dir: Path, *, redirect: bool = True) -> tuple[BlobStore, UploadStore]:
    """The blob store and its upload store for ``url`` (``None``: files in ``data_dir``). ``redirect``: blob GETs
    from object storage answer with a presigned URL instead of streaming through the server."""
    if is_object_storage(url):
        from .objects import ObjectBlobStore, ObjectUploadStore, open_object_store, parse_object_url

        assert url is not None
        blobs = ObjectBlobStore(open_object_store(parse_object_url(url)), redirect=redirect)
        return blobs, ObjectUploadStore(blobs)
    folder = storage_folder(url, data_dir)
    files = FileBlobStore(folder)
    return files, FileUploadStore(folder, files)
