"""Content-addressed blob files and resumable upload sessions on the local filesystem.

Layout under the data directory::

    blobs/<algorithm>/<hex[:2]>/<hex>     committed blobs (renamed into place after digest verification)
    quarantine/<algorithm>-<hex>          blob files whose bytes no longer match their digest (``gc --verify``)
    uploads/<uuid>/data                   the bytes received so far for an upload session
    uploads/<uuid>/state.json             {"repository": ..., "created": ...}

An upload's offset is the size of its ``data`` file, so a session survives a restart (or a crash) and any
worker process can continue it. The running hash is cached per process; when the cache does not match the
file (another worker appended, or the server restarted), the file is re-hashed once when the upload finishes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...oci.digest import DEFAULT_ALGORITHM, Digest, Hasher
from ...transport.filesink import PAGE_CACHE_WRITE
from .private import create_private_file, make_private_dir
from .protocols import UploadBusyError, UploadGoneError, UploadOffsetError
from .records import UploadState

#: Bytes gathered from the request before one write+hash step in the I/O thread.
WRITE_BATCH = 4 * 1024 * 1024

#: A body (or its tail) of at most this many bytes is written and hashed on the event loop: less than a thread
#: hand-off costs.
INLINE_TAIL = 64 * 1024

#: Name prefix of a session directory being assembled (never a valid upload id).
_STAGING = ".new-"
#: Seconds after which a staging directory left by a crash is removed.
STAGING_GRACE = 3600.0
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobReader:
    """An open blob file (a :class:`~.protocols.BlobReader`)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        os.close(self.fd)


class FileBlobStore:
    """Committed blobs, addressed by digest, as files (a :class:`~.protocols.BlobStore`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "blobs"
        self.quarantine_root = Path(root) / "quarantine"
        make_private_dir(self.root)

    def check_writable(self) -> None:
        """Raise ``OSError`` when a file cannot be created in the blob folder (gone, read-only, no permission):
        creates and removes one empty probe file."""
        try:
            fd, probe = tempfile.mkstemp(prefix=".ready-", dir=self.root)
        except OSError as exc:
            raise OSError(f"cannot create files in the blob folder {self.root}: {exc.strerror or exc}") from None
        os.close(fd)
        os.unlink(probe)

    def path(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives (whether or not it exists)."""
        return self.root / digest.algorithm / digest.hex[:2] / digest.hex

    def size(self, digest: Digest) -> int | None:
        """The blob's size in bytes, or ``None`` when it is not stored."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: Digest, *, redirect: bool = True) -> FileBlobReader | None:
        """The blob file opened for reading, ``None`` when it is not stored."""
        try:
            fd = os.open(self.path(digest), os.O_RDONLY)
        except FileNotFoundError:
            return None
        return FileBlobReader(fd, os.fstat(fd).st_size)

    def adopt(self, source: Path, digest: Digest) -> None:
        """Move a verified, fsynced file into place as the blob ``digest`` (same filesystem: an atomic rename)."""
        target = self.path(digest)
        make_private_dir(target.parent)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def quarantine(self, digest: Digest) -> Path:
        """Move the blob file out of the store into ``quarantine/`` (kept for inspection); its new path."""
        make_private_dir(self.quarantine_root)
        target = self.quarantine_root / f"{digest.algorithm}-{digest.hex}"
        os.replace(self.path(digest), target)
        _fsync_dir(self.path(digest).parent)
        return target

    def delete(self, digest: Digest) -> bool:
        """Remove the blob file; True when it existed."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_many(self, digests: list[Digest]) -> None:
        """Remove these blob files (those already gone are skipped)."""
        for digest in digests:
            self.delete(digest)

    def read(self, digest: Digest, limit: int) -> bytes | None:
        """The whole blob when it is at most ``limit`` bytes (image configs), else ``None``."""
        path = self.path(digest)
        try:
            if path.stat().st_size > limit:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def iter_sizes(self) -> Iterator[tuple[Digest, int]]:
        """Every stored blob with its size (garbage collection)."""
        for digest, path in self.iter_all():
            try:
                yield digest, path.stat().st_size
            except FileNotFoundError:
                continue

    def iter_all(self) -> Iterator[tuple[Digest, Path]]:
        """Every stored blob (for garbage collection)."""
        for algo_dir in self.root.iterdir() if self.root.exists() else ():
            if not algo_dir.is_dir():
                continue
            for prefix in algo_dir.iterdir():
                for path in prefix.iterdir() if prefix.is_dir() else ():
                    try:
                        digest = Digest.parse(f"{algo_dir.name}:{path.name}")
                    except ValueError:
                        continue
                    yield digest, path


class FileUploadStore:
    """Resumable upload sessions, one directory each, committed into ``blobs`` (a :class:`~.protocols.UploadStore`)."""

    def __init__(self, root: Path, blobs: FileBlobStore) -> None:
        self.blobs = blobs
        self.root = Path(root) / "uploads"
        make_private_dir(self.root)
        self._hashers: dict[str, Hasher] = {}

    def _dir(self, upload_id: str) -> Path | None:
        if not _UPLOAD_ID.fullmatch(upload_id):
            return None
        return self.root / upload_id

    def create(self, repository: str) -> UploadState:
        """Start a session for ``repository``.

        The session is assembled in a staging directory and renamed into place whole, so a collection running at
        the same moment never sees (and removes) a half-made session."""
        upload_id = uuid.uuid4().hex
        staging = self.root / f"{_STAGING}{upload_id}"
        staging.mkdir(mode=0o700)
        created = time.time()
        try:
            create_private_file(staging / "data")
            state = json.dumps({"repository": repository, "created": created}).encode()
            create_private_file(staging / "state.json", state)
            os.rename(staging, self.root / upload_id)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # e.g. a full disk: no half-made session stays behind
            raise
        self._hashers[upload_id] = Hasher(DEFAULT_ALGORITHM)
        return UploadState(upload_id, repository, created, 0, created)

    def state(self, upload_id: str) -> UploadState | None:
        """The session, or ``None`` when unknown (or its id is malformed)."""
        directory = self._dir(upload_id)
        if directory is None:
            return None
        try:
            info = json.loads((directory / "state.json").read_text())
            data = (directory / "data").stat()
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        created = float(info.get("created", 0))
        return UploadState(upload_id, str(info.get("repository", "")), created, data.st_size, data.st_mtime)

    def data_path(self, upload_id: str) -> Path:
        return self.root / upload_id / "data"

    @contextlib.contextmanager
    def _locked(self, upload_id: str) -> Iterator[int]:
        """An exclusive lock on the session (across processes); the fd of its data file, opened for append."""
        if self._dir(upload_id) is None:
            raise UploadGoneError(upload_id)
        try:
            fd = os.open(self.data_path(upload_id), os.O_WRONLY | os.O_APPEND)
        except (FileNotFoundError, NotADirectoryError):
            raise UploadGoneError(upload_id) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadBusyError(upload_id) from None
            yield fd
        finally:
            os.close(fd)

    async def append(self, upload_id: str, body: AsyncIterator[bytes], start: int | None = None) -> int:
        """Append the request body to the session; returns the new offset.

        ``start`` (from ``Content-Range``) must equal the current offset, else :class:`UploadOffsetError` is raised
        before anything is written. Chunks are gathered into large batches that are written and hashed in a
        worker thread while the next batch is received.
        """
        with self._locked(upload_id) as fd:
            offset = os.fstat(fd).st_size
            if start is not None and start != offset:
                raise UploadOffsetError(offset)
            hasher = self._hashers.get(upload_id)
            if hasher is not None and hasher.size != offset:
                hasher = None
            if hasher is None and offset == 0:
                # Nothing received yet: this process hashes the body as it writes it, though another one started
                # the session (a client whose POST and PATCH went to different workers, or a restart); else the
                # whole file would be read back and hashed when the upload finishes.
                hasher = Hasher(DEFAULT_ALGORITHM)
            self._hashers.pop(upload_id, None)
            try:
                written = await _copy_stream(body, fd, hasher)
            except OSError:
                # The storage refused a write (full, read-only, over quota): the chunk is rolled back whole, so
                # the session holds exactly what it held before and the client may retry it.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, offset)
                raise
            if hasher is not None:
                self._hashers[upload_id] = hasher
            return offset + written

    def _hash_file(self, upload_id: str, algorithm: str) -> Hasher:
        hasher = Hasher(algorithm)
        with open(self.data_path(upload_id), "rb", buffering=0) as f:
            while True:
                chunk = f.read(WRITE_BATCH)
                if not chunk:
                    break
                hasher.update(chunk)
        return hasher

    @contextlib.asynccontextmanager
    async def sealed(self, upload_id: str, algorithm: str) -> AsyncIterator[tuple[str, int]]:
        """Lock the session and yield the digest (in ``algorithm``) and size of its fsynced bytes.

        No other request can append while the caller commits the data file (raises :class:`UploadBusyError`
        when one is appending right now).
        """
        with self._locked(upload_id) as fd:
            size = os.fstat(fd).st_size
            hasher = self._hashers.get(upload_id)
            if hasher is None or hasher.algorithm != algorithm or hasher.size != size:
                hasher = await asyncio.to_thread(self._hash_file, upload_id, algorithm)
            await asyncio.to_thread(os.fsync, fd)
            yield hasher.digest, hasher.size

    def stage(self, upload_id: str, digest: Digest) -> None:
        """Nothing to do ahead: the commit is a rename."""

    def received_digest(self, upload_id: str, algorithm: str, size: int) -> str | None:
        """The running hash of the session's bytes as this process appended them, when it covers ``size`` bytes."""
        hasher = self._hashers.get(upload_id)
        if hasher is None or hasher.algorithm != algorithm or hasher.size != size:
            return None
        return hasher.digest

    def commit(self, upload_id: str, digest: Digest) -> None:
        """Adopt the sealed session's verified, fsynced data file as blob ``digest`` (an atomic rename)."""
        self.blobs.adopt(self.data_path(upload_id), digest)

    def discard(self, upload_id: str) -> bool:
        """Remove the session (cancel, or after its blob was committed); True when it existed."""
        self._hashers.pop(upload_id, None)
        directory = self._dir(upload_id)
        if directory is None or not directory.exists():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def discard_idle(self, upload_id: str) -> bool:
        """Remove the session unless a request is writing to it right now; True when it was removed."""
        try:
            with self._locked(upload_id):
                return self.discard(upload_id)
        except UploadBusyError:
            return False
        except UploadGoneError:
            return self.discard(upload_id)

    def sessions(self) -> Iterator[UploadState]:
        """Every session on disk (for garbage collection). Staging directories of sessions being created are not
        sessions; one left behind by a crash is removed once it is an hour old."""
        for directory in self.root.iterdir():
            if directory.name.startswith(_STAGING):
                with contextlib.suppress(OSError):
                    if time.time() - directory.stat().st_mtime > STAGING_GRACE:
                        shutil.rmtree(directory, ignore_errors=True)
                continue
            state = self.state(directory.name)
            if state is not None:
                yield state
            elif directory.is_dir():
                # A session whose state file never got written (an older release): report it with its age.
                mtime = directory.stat().st_mtime
                yield UploadState(directory.name, "", mtime, 0, mtime)


#: Most chunks passed to one ``writev`` call (below the kernel's IOV_MAX of 1024).
_MAX_IOV = 512


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """Write ``chunks`` to ``fd`` without joining them, at most ``PAGE_CACHE_WRITE`` bytes per ``writev`` (larger
    writes get large page-cache folios, which on a VM can cost ten times the CPU: see :data:`PAGE_CACHE_WRITE`)."""
    pending = [memoryview(c) for c in chunks]
    while pending:
        group: list[memoryview] = []
        size = 0
        for view in pending[:_MAX_IOV]:
            group.append(view[: PAGE_CACHE_WRITE - size])
            size += len(group[-1])
            if size == PAGE_CACHE_WRITE:
                break
        n = os.writev(fd, group)
        while pending and n >= len(pending[0]):
            n -= len(pending[0])
            pending.pop(0)
        if n:
            pending[0] = pending[0][n:]


def _hash_all(hasher: Hasher, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


async def _copy_stream(body: AsyncIterator[bytes], fd: int, hasher: Hasher | None) -> int:
    """Write ``body`` to ``fd`` in large batches, hashing each batch.

    Received chunks are gathered in a list (never joined: ``writev`` takes them as they are). Batches go to two
    single-thread executors, one writing and one hashing (both release the GIL), so each sees the batches in
    order while the event loop keeps receiving; at most ``PIPELINE_DEPTH`` + 1 batches are in memory.
    """
    batch: list[bytes] = []
    size = 0
    total = 0
    pipeline: _Pipeline | None = None
    try:
        async for chunk in body:
            if not chunk:
                continue
            batch.append(chunk)
            size += len(chunk)
            if size >= WRITE_BATCH or len(batch) >= _MAX_IOV:
                if pipeline is None:
                    pipeline = _Pipeline(fd, hasher)
                await pipeline.submit(batch)
                total += size
                batch, size = [], 0
        if batch and (pipeline is not None or size > INLINE_TAIL):
            # The last, partial batch goes to the threads too: up to WRITE_BATCH bytes of write and hash would
            # otherwise hold up the event loop for milliseconds.
            if pipeline is None:
                pipeline = _Pipeline(fd, hasher)
            await pipeline.submit(batch)
            total += size
            batch, size = [], 0
    finally:
        if pipeline is not None:
            await pipeline.close()
    if batch:
        _write_all(fd, batch)
        if hasher is not None:
            _hash_all(hasher, batch)
        total += size
    return total


#: Batches written and hashed in the background while the next one is received.
PIPELINE_DEPTH = 3


def _consume_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _Pipeline:
    """Ordered background writing and hashing of batches for one request body."""

    def __init__(self, fd: int, hasher: Hasher | None) -> None:
        self._fd = fd
        self._hasher = hasher
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dockyard-write")
        self._hashing = ThreadPoolExecutor(1, thread_name_prefix="dockyard-hash") if hasher is not None else None
        self._in_flight: collections.deque[list[asyncio.Future[None]]] = collections.deque()
        self._failed = False

    def _write(self, batch: list[bytes]) -> None:
        """Write one batch, unless an earlier one failed (the file must stay a prefix of the body)."""
        if self._failed:
            raise OSError("an earlier write of this request body failed")
        try:
            _write_all(self._fd, batch)
        except BaseException:
            self._failed = True
            raise

    async def submit(self, batch: list[bytes]) -> None:
        """Queue ``batch``; waits first when ``PIPELINE_DEPTH`` batches are still in flight."""
        while len(self._in_flight) >= PIPELINE_DEPTH:
            for future in self._in_flight.popleft():
                await future
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._writer, self._write, batch)]
        if self._hashing is not None and self._hasher is not None:
            futures.append(loop.run_in_executor(self._hashing, _hash_all, self._hasher, batch))
        for future in futures:
            # After a failure the remaining batches are abandoned: their outcome is not an error of its own.
            future.add_done_callback(_consume_outcome)
        self._in_flight.append(futures)

    async def close(self) -> None:
        """Wait for every queued batch (re-raising the first failure) and stop the threads.

        On a failure or a cancellation, batches not yet started are dropped and the one being written is waited
        for (briefly blocking the loop): the caller closes the file descriptor next, so no thread may still use it.
        """
        try:
            while self._in_flight:
                for future in self._in_flight.popleft():
                    await future
        finally:
            self._writer.shutdown(wait=True, cancel_futures=True)
            if self._hashing is not None:
                self._hashing.shutdown(wait=True, cancel_futures=True)

