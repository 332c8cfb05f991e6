"""Blobs and resumable upload sessions in object storage (S3, Azure Blob, Google Cloud Storage), through ``obstore``.

Layout under the URL's prefix::

    blobs/<algorithm>/<hex[:2]>/<hex>         committed blobs (copied into place after digest verification)
    uploads/<uuid>/state.json                 {"repository": ..., "created": ...}
    uploads/<uuid>/parts/<offset:020d>        one object per appended request body, named by where it starts
    uploads/<uuid>/sealed-<uuid>              one finishing request's private copy of the bytes it verifies

Nothing about a session lives in a process: any replica continues any session, and a session survives restarts.
The offset is the end of the last part in a listing of ``parts/``. A part is written only when its name is the
current offset, so parts stay contiguous; two requests racing for the same offset write the same key, and the
later one wins whole (the session never holds a mix of both bodies).

Verification does not carry hash state between processes: finishing an upload first makes a copy of the session's
bytes that only this request writes (a server-side copy of a single part; several parts are read and written
joined), then reads that copy back and hashes it; the commit is a server-side copy of exactly the verified object
into the content-addressed key, replacing a stored copy whose bytes may have rotted. A request racing on the same
session can therefore change what a finish sees, never what it verified.

S3 copies at most :data:`S3_COPY_LIMIT` bytes in one request (``CopyObject``), and obstore has no multipart copy: a
larger object is copied by reading it and writing it back as a multipart upload through this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import AzureStore, GCSStore, S3Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

from ...oci.digest import Digest, Hasher
from .factory import StorageUrlError
from .protocols import BlobRedirect, StoreUnavailableError, UploadGoneError, UploadOffsetError
from .records import UploadState

#: How long a presigned blob URL stays valid.
REDIRECT_LIFETIME = timedelta(minutes=5)

#: Bytes per piece when a session's parts are joined and hashed (also the multipart part size).
ASSEMBLE_CHUNK = 8 * 1024 * 1024

#: The largest object S3's ``CopyObject`` copies (5 GiB); a larger one is streamed through the server.
S3_COPY_LIMIT = 5 * 1024**3

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ObjectLocation:
    """Where an object store's keys live: the parsed ``s3://``, ``az://`` or ``gs://`` URL."""

    scheme: str
    container: str
    prefix: str


def parse_object_url(url: str) -> ObjectLocation:
    """``s3://bucket/prefix``, ``az://container/prefix`` or ``gs://bucket/prefix`` (:class:`StorageUrlError`
    otherwise)."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "az", "gs") or not parts.netloc:
        raise StorageUrlError(
            f"not an object storage URL (s3://bucket/prefix, az://container/prefix or gs://bucket/prefix): {url!r}")
    return ObjectLocation(parts.scheme, parts.netloc, parts.path.strip("/"))


#: The stores that can presign URLs (every one ``--storage-url`` accepts).
CloudStore = S3Store | AzureStore | GCSStore

#: Where a Google service account key is found: the variables obstore reads, else the application default
#: credentials file of ``gcloud auth application-default login``.
GOOGLE_CREDENTIAL_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
)
GCLOUD_DEFAULT_CREDENTIALS = "~/.config/gcloud/application_default_credentials.json"


def _http_options(endpoint: str | None) -> ClientConfig:
    """Plain http only for an endpoint that asks for it (an emulator, a private gateway)."""
    return {"allow_http": True} if endpoint and endpoint.startswith("http://") else {}


def _azure_settings() -> dict[str, Any]:
    """Account, credential and endpoint from ``AZURE_STORAGE_CONNECTION_STRING`` (else ``AZURE_STORAGE_*``
    variables, which obstore reads itself)."""
    raw = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not raw:
        return {}
    fields = dict(part.split("=", 1) for part in raw.split(";") if "=" in part)
    settings: dict[str, Any] = {}
    if "AccountName" in fields:
        settings["account_name"] = fields["AccountName"]
    if "AccountKey" in fields:
        settings["account_key"] = fields["AccountKey"]
    if "SharedAccessSignature" in fields:
        settings["sas_key"] = fields["SharedAccessSignature"]
    endpoint = fields.get("BlobEndpoint")
    if endpoint is None and "AccountName" in fields:
        protocol = fields.get("DefaultEndpointsProtocol", "https")
        suffix = fields.get("EndpointSuffix", "core.windows.net")
        endpoint = f"{protocol}://{fields['AccountName']}.blob.{suffix}"
    if endpoint:
        settings["endpoint"] = endpoint.rstrip("/")
    return settings


#: Retries of a failed object storage request: a few, within a bound, so a client is answered (503) rather than
#: held for minutes while the store is down.
RETRIES: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}


def _google_credentials_given() -> bool:
    """True when a service account key is named by the environment or gcloud's default credentials file exists."""
    if any(os.environ.get(name) for name in GOOGLE_CREDENTIAL_VARIABLES):
        return True
    return os.path.isfile(os.path.expanduser(GCLOUD_DEFAULT_CREDENTIALS))


def open_object_store(location: ObjectLocation) -> CloudStore:
    """An obstore client for ``location`` with credentials from the standard environment variables.

    :class:`StorageUrlError` (one line) when they cannot be used: a key file that is missing or malformed, or, for
    ``gs://``, no service account key at all (presigned URLs are signed with it)."""
    try:
        return _open_object_store(location)
    except BaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageUrlError(f"cannot use {location.scheme}://{location.container}: {reason}") from None


def _open_object_store(location: ObjectLocation) -> CloudStore:
    prefix = location.prefix or None
    if location.scheme == "gs":
        if not _google_credentials_given():
            raise StorageUrlError(
                f"gs://{location.container} needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service account key file (or GOOGLE_SERVICE_ACCOUNT_KEY to the key's JSON)")
        return GCSStore(location.container, prefix=prefix, retry_config=RETRIES)
    if location.scheme == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
        s3: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
        return S3Store(location.container, prefix=prefix, client_options=_http_options(endpoint),
                       retry_config=RETRIES, **s3)
    az = _azure_settings()
    return AzureStore(location.container, prefix=prefix, client_options=_http_options(az.get("endpoint")),
                      retry_config=RETRIES, **az)


F = TypeVar("F", bound=Callable[..., Any])


#: What obstore raises when a request fails (a "not found" on a write means the bucket/container is missing; reads
#: of a missing object are handled before, by :func:`_missing`).
_FAILURES = (BaseError, FileNotFoundError)


def _unavailable(error: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"the object store failed: {str(error).splitlines()[0] if str(error) else error!r}")


def _guarded(method: F) -> F:
    """Turn the object store's failures (other than a missing object, which callers handle) into
    :class:`StoreUnavailableError`; for a generator, while it is iterated."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generate(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(*args, **kwargs)
            except _FAILURES as exc:
                raise _unavailable(exc) from exc

        return generate  # type: ignore[return-value]

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except _FAILURES as exc:
            raise _unavailable(exc) from exc

    return call  # type: ignore[return-value]


def _blob_key(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def _missing(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(...)``, ``None`` when the object does not exist."""
    try:
        return call(*args, **kwargs)
    except (NotFoundError, FileNotFoundError):
        return None


class ObjectBlobReader:
    """A stored blob read by ranged GETs (a :class:`~.protocols.BlobReader`)."""

    def __init__(self, store: CloudStore, key: str, size: int) -> None:
        self._store = store
        self._key = key
        self.size = size

    @_guarded
    def read_at(self, offset: int, length: int) -> bytes:
        end = min(self.size, offset + length)
        if offset >= end:
            return b""
        return bytes(obstore.get_range(self._store, self._key, start=offset, end=end))

    def close(self) -> None:
        pass


class ObjectBlobStore:
    """Committed blobs, addressed by digest, as objects (a :class:`~.protocols.BlobStore`).

    With ``redirect`` a GET answers with a presigned URL valid for :data:`REDIRECT_LIFETIME`; without it the
    server streams the object through ranged reads."""

    def __init__(
        self, store: CloudStore, *, redirect: bool = True, copy_limit: int | Literal["auto"] | None = "auto"
    ) -> None:
        self.store = store
        self.redirect = redirect
        if copy_limit == "auto":
            copy_limit = S3_COPY_LIMIT if isinstance(store, S3Store) else None
        #: Objects larger than this many bytes are copied by streaming them (``None``: any size server-side).
        self.copy_limit = copy_limit

    def _server_side(self, size: int) -> bool:
        return self.copy_limit is None or size <= self.copy_limit

    async def copy_async(self, source_key: str, target_key: str, size: int) -> None:
        """Copy an object of ``size`` bytes: server-side up to :attr:`copy_limit`, streamed beyond it."""
        if self._server_side(size):
            await obstore.copy_async(self.store, source_key, target_key, overwrite=True)
            return
        result = await obstore.get_async(self.store, source_key)
        await obstore.put_async(self.store, target_key, result.stream(min_chunk_size=ASSEMBLE_CHUNK),
                                chunk_size=ASSEMBLE_CHUNK)

    def check_writable(self) -> None:
        """Raise ``OSError`` when an object cannot be written and removed (bucket gone, credentials refused)."""
        probe = f"ready/{uuid.uuid4().hex}"
        try:
            obstore.put(self.store, probe, b"")
            obstore.delete(self.store, probe)
        except Exception as exc:  # any refusal of the store means new blobs cannot be stored
            raise OSError(f"cannot write to the object store: {exc}") from None

    @_guarded
    def size(self, digest: Digest) -> int | None:
        meta = _missing(obstore.head, self.store, _blob_key(digest))
        return None if meta is None else int(meta["size"])

    @_guarded
    def open(self, digest: Digest, *, redirect: bool = True) -> ObjectBlobReader | BlobRedirect | None:
        size = self.size(digest)
        if size is None:
            return None
        key = _blob_key(digest)
        if self.redirect and redirect:
            return BlobRedirect(obstore.sign(self.store, "GET", key, REDIRECT_LIFETIME), size)
        return ObjectBlobReader(self.store, key, size)

    @_guarded
    def read(self, digest: Digest, limit: int) -> bytes | None:
        size = self.size(digest)
        if size is None or size > limit:
            return None
        result = _missing(obstore.get, self.store, _blob_key(digest))
        return None if result is None else bytes(result.bytes())

    @_guarded
    def delete(self, digest: Digest) -> bool:
        if self.size(digest) is None:
            return False
        obstore.delete(self.store, _blob_key(digest))
        return True

    @_guarded
    def delete_many(self, digests: list[Digest]) -> None:
        """Remove these blobs in bulk requests (S3 DeleteObjects, Azure batch; a missing key is no error)."""
        keys = [_blob_key(digest) for digest in digests]
        if not keys:
            return
        try:
            obstore.delete(self.store, keys)  # obstore splits the list into the service's bulk requests
        except (NotFoundError, FileNotFoundError):
            for key in keys:  # Azure refuses a batch naming a missing blob: one by one, skipping those
                _missing(obstore.delete, self.store, key)

    @_guarded
    def adopt(self, source_key: str, digest: Digest, size: int) -> None:
        """Copy a verified object of ``size`` bytes into place as the blob ``digest`` (replaces a stored copy).

        Runs on a worker thread (never on an event loop): a copy beyond :attr:`copy_limit` streams on a loop of its
        own."""
        if self._server_side(size):
            obstore.copy(self.store, source_key, _blob_key(digest), overwrite=True)
        else:
            asyncio.run(self.copy_async(source_key, _blob_key(digest), size))

    @_guarded
    def iter_sizes(self) -> Iterator[tuple[Digest, int]]:
        """Every stored blob with its size (garbage collection)."""
        for page in obstore.list(self.store, "blobs/", chunk_size=1000):
            for meta in page:
                algorithm, _, name = meta["path"].removeprefix("blobs/").partition("/")
                try:
                    digest = Digest.parse(f"{algorithm}:{name.rpartition('/')[2]}")
                except ValueError:
                    continue
                yield digest, int(meta["size"])


async def _counted(body: AsyncIterator[bytes], first: bytes, seen: list[int]) -> AsyncIterator[bytes]:
    seen[0] += len(first)
    yield first
    async for chunk in body:
        if chunk:
            seen[0] += len(chunk)
            yield chunk


class ObjectUploadStore:
    """Resumable upload sessions kept wholly in the object store (a :class:`~.protocols.UploadStore`)."""

    def __init__(self, blobs: ObjectBlobStore) -> None:
        self.blobs = blobs
        self.store = blobs.store
        #: The object holding each sealed session's verified bytes and their size, until it is committed (this
        #: process only).
        self._verified: dict[str, tuple[str | None, int]] = {}
        #: Sessions whose verified bytes :meth:`stage` already copied into place, with the digest.
        self._staged: dict[str, Digest] = {}

    @staticmethod
    def _base(upload_id: str) -> str:
        return f"uploads/{upload_id}/"

    @_guarded
    def create(self, repository: str) -> UploadState:
        upload_id = uuid.uuid4().hex
        info = json.dumps({"repository": repository, "created": time.time()}).encode()
        obstore.put(self.store, self._base(upload_id) + "state.json", info)
        state = self.state(upload_id)
        assert state is not None
        return state

    def _parts(self, upload_id: str) -> list[tuple[int, int, str, float]]:
        """(start, size, key, modified) of the session's parts, in order."""
        parts = []
        for page in obstore.list(self.store, self._base(upload_id) + "parts/", chunk_size=1000):
            for meta in page:
                name = meta["path"].rpartition("/")[2]
                if name.isdigit():
                    parts.append((int(name), int(meta["size"]), meta["path"], meta["last_modified"].timestamp()))
        parts.sort()
        return parts

    @_guarded
    def state(self, upload_id: str) -> UploadState | None:
        if not _UPLOAD_ID.fullmatch(upload_id):
            return None
        result = _missing(obstore.get, self.store, self._base(upload_id) + "state.json")
        if result is None:
            return None
        try:
            info = json.loads(bytes(result.bytes()))
        except ValueError:
            return None
        touched = result.meta["last_modified"].timestamp()
        offset = 0
        for start, size, _, modified in self._parts(upload_id):
            if start == offset:
                offset += size
                touched = max(touched, modified)
        return UploadState(upload_id, str(info.get("repository", "")), float(info.get("created", 0)), offset, touched)

    async def append(self, upload_id: str, body: AsyncIterator[bytes], start: int | None = None) -> int:
        """Write the request body as the part starting at the session's offset; the new offset."""
        state = await asyncio.to_thread(self.state, upload_id)
        if state is None:
            raise UploadGoneError(upload_id)
        offset = state.offset
        if start is not None and start != offset:
            raise UploadOffsetError(offset)
        first = b""
        async for chunk in body:
            if chunk:
                first = chunk
                break
        if not first:
            return offset
        seen = [0]
        key = f"{self._base(upload_id)}parts/{offset:020d}"
        try:
            await obstore.put_async(self.store, key, _counted(body, first, seen), chunk_size=ASSEMBLE_CHUNK)
        except _FAILURES as exc:
            raise _unavailable(exc) from exc
        return offset + seen[0]

    async def _verify(self, upload_id: str, algorithm: str) -> tuple[Hasher, str | None]:
        """Copy the session's bytes to a key private to this call and hash them as read back from the store (the
        hashing runs in a thread). The hasher and the private key (``None`` for an empty session)."""
        hasher = Hasher(algorithm)
        offset, keys = 0, []
        for start, size, key, _ in await asyncio.to_thread(self._parts, upload_id):
            if start != offset:
                break
            keys.append(key)
            offset += size
        if not keys:
            return hasher, None
        target = f"{self._base(upload_id)}sealed-{uuid.uuid4().hex}"

        async def read(sources: list[str]) -> AsyncIterator[bytes]:
            for key in sources:
                result = await obstore.get_async(self.store, key)
                async for piece in result.stream(min_chunk_size=ASSEMBLE_CHUNK):
                    data = bytes(piece)
                    await asyncio.to_thread(hasher.update, data)
                    yield data

        if len(keys) == 1:
            await self.blobs.copy_async(keys[0], target, offset)
            async for _ in read([target]):
                pass
        else:
            await obstore.put_async(self.store, target, read(keys), chunk_size=ASSEMBLE_CHUNK)
        return hasher, target

    @contextlib.asynccontextmanager
    async def sealed(self, upload_id: str, algorithm: str) -> AsyncIterator[tuple[str, int]]:
        """Yield the digest and size of the session's bytes, read back from the store and hashed."""
        if await asyncio.to_thread(self.state, upload_id) is None:
            raise UploadGoneError(upload_id)
        try:
            hasher, key = await self._verify(upload_id, algorithm)
        except _FAILURES as exc:
            raise _unavailable(exc) from exc
        self._verified[upload_id] = (key, hasher.size)
        try:
            yield hasher.digest, hasher.size
        finally:
            self._verified.pop(upload_id, None)
            self._staged.pop(upload_id, None)

    @_guarded
    def stage(self, upload_id: str, digest: Digest) -> None:
        """Copy the sealed session's verified object into the content-addressed key, outside the write transaction
        (a copy of gigabytes takes a while, and every replica's writers wait for that transaction). Until the
        commit links it, garbage collection may remove it again: the commit checks."""
        self._adopt(upload_id, digest)
        self._staged[upload_id] = digest

    def received_digest(self, upload_id: str, algorithm: str, size: int) -> str | None:
        return None  # hashed only when sealed, as read back from the store

    @_guarded
    def commit(self, upload_id: str, digest: Digest) -> None:
        """Make sure the content-addressed key holds the sealed session's verified bytes: staged and still there
        (collections wait for this transaction, so it stays), or copied now."""
        _, size = self._verified.get(upload_id, (None, 0))
        if self._staged.get(upload_id) == digest and self.blobs.size(digest) == size:
            return
        self._adopt(upload_id, digest)

    def _adopt(self, upload_id: str, digest: Digest) -> None:
        key, size = self._verified.get(upload_id, (None, 0))
        if key is None:
            obstore.put(self.store, _blob_key(digest), b"")
        else:
            self.blobs.adopt(key, digest, size)

    @_guarded
    def discard(self, upload_id: str) -> bool:
        if not _UPLOAD_ID.fullmatch(upload_id):
            return False
        keys = [meta["path"] for page in obstore.list(self.store, self._base(upload_id)) for meta in page]
        if keys:
            obstore.delete(self.store, keys)
        return bool(keys)

    def discard_idle(self, upload_id: str) -> bool:
        """Remove the session (a chunk still being written is not visible in object storage: the idle time that
        ``gc``/expiry require is what protects it)."""
        return self.discard(upload_id)

    @_guarded
    def sessions(self) -> Iterator[UploadState]:
        listing = obstore.list_with_delimiter(self.store, "uploads/")
        for prefix in listing["common_prefixes"]:
            upload_id = prefix.rstrip("/").rpartition("/")[2]
            state = self.state(upload_id)
            if state is not None:
                yield state
