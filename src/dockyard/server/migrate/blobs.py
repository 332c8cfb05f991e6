"""Copying blobs between stores: streamed in chunks, several at once, each hashed as it is read from the source
and verified again by the destination's own upload path (which reads an object store's copy back) before it is
committed under its digest. A blob the destination already holds with the right size is not sent again."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ...oci.digest import Digest, Hasher
from ...workflows.progress import NoProgress, TransferProgress
from ..storage.protocols import BlobReader, BlobRedirect, BlobStore, UploadStore
from ..storage.records import UploadState

#: Bytes read from the source per step (the memory one running copy holds is a small multiple of it).
CHUNK = 8 * 1024 * 1024
#: The repository named by the destination upload sessions a migration opens.
SESSION_REPOSITORY = "dockyard-migrate"


class BlobMismatchError(Exception):
    """A source blob's bytes do not hash to its digest (the blob is named in the message)."""


@dataclass
class BlobTally:
    """What a blob copy did."""

    total: int = 0
    total_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    #: One line per blob that could not be copied.
    failed: list[str] = field(default_factory=list)


async def _chunks(reader: BlobReader, hasher: Hasher, digest: str, progress: TransferProgress
                  ) -> AsyncIterator[bytes]:
    """The blob's bytes in :data:`CHUNK` pieces, each read and hashed in a worker thread."""

    def step(offset: int) -> bytes:
        data = reader.read_at(offset, CHUNK)
        hasher.update(data)
        return data

    offset = 0
    while offset < reader.size:
        data = await asyncio.to_thread(step, offset)
        if not data:
            break
        offset += len(data)
        progress.blob_advanced(digest, len(data))
        yield data


async def _open_session(uploads: UploadStore) -> UploadState:
    """A new destination upload session, created in a worker thread. Cancelled meanwhile (Ctrl-C), the thread
    still finishes creating it: the session is then removed, by the thread or here, whichever comes second."""
    lock = threading.Lock()
    made: list[UploadState] = []
    abandoned = False

    def create() -> UploadState:
        session = uploads.create(SESSION_REPOSITORY)
        with lock:
            if abandoned:
                uploads.discard(session.id)
            else:
                made.append(session)
        return session

    try:
        return await asyncio.to_thread(create)
    except BaseException:
        with lock:
            abandoned = True
            leftover = list(made)
        for session in leftover:  # created, but this coroutine never saw it
            await asyncio.shield(asyncio.get_running_loop().run_in_executor(None, uploads.discard, session.id))
        raise


async def copy_blob(source: BlobStore, uploads: UploadStore, digest: Digest, size: int,
                    progress: TransferProgress) -> None:
    """Copy one blob through a destination upload session; :class:`BlobMismatchError` when its bytes are not what
    its digest says (nothing is committed then)."""
    reader = await asyncio.to_thread(source.open, digest)
    if reader is None or isinstance(reader, BlobRedirect):
        raise BlobMismatchError(f"blob {digest} vanished from the source while it was being copied")
    try:
        session = await _open_session(uploads)
    except BaseException:
        await asyncio.to_thread(reader.close)
        raise
    hasher = Hasher(digest.algorithm)
    try:
        progress.blob_started(str(digest), size, "blob")
        await uploads.append(session.id, _chunks(reader, hasher, str(digest), progress), start=0)
        if hasher.digest != str(digest) or hasher.size != size:
            raise BlobMismatchError(
                f"blob {digest} at the source does not match its digest (its {hasher.size} bytes hash to "
                f"{hasher.digest})"
            )
        async with uploads.sealed(session.id, digest.algorithm) as (stored, stored_size):
            if stored != str(digest) or stored_size != size:
                raise BlobMismatchError(f"blob {digest} read back from the destination hashes to {stored}")
            await asyncio.to_thread(uploads.commit, session.id, digest)
    finally:
        progress.blob_finished(str(digest))
        # Handed to a thread at once and shielded: on Ctrl-C the session is still removed (``asyncio.run`` waits
        # for the default executor's threads before it returns).
        await asyncio.shield(asyncio.get_running_loop().run_in_executor(None, _release, reader, uploads, session.id))


def _release(reader: BlobReader, uploads: UploadStore, upload_id: str) -> None:
    """Close the source blob and remove the destination session (committed or not)."""
    reader.close()
    with contextlib.suppress(Exception):
        uploads.discard(upload_id)


async def copy_blobs(source: BlobStore, dest: BlobStore, uploads: UploadStore, *, jobs: int,
                     progress: TransferProgress | None = None) -> BlobTally:
    """Copy every blob of ``source`` that ``dest`` does not hold with the same size, ``jobs`` at a time. A blob
    that fails is named in the tally and the others still go (so a run after a repair sends only what is left)."""
    progress = progress or NoProgress()
    tally = BlobTally()
    listing = await asyncio.to_thread(lambda: list(source.iter_sizes()))
    tally.total, tally.total_bytes = len(listing), sum(size for _, size in listing)
    pending = iter(listing)

    async def worker() -> None:
        for digest, size in pending:  # shared: each blob goes to exactly one worker
            if await asyncio.to_thread(dest.size, digest) == size:
                tally.present += 1
                progress.blob_skipped(str(digest), size, "exists")
                continue
            try:
                await copy_blob(source, uploads, digest, size, progress)
            except BlobMismatchError as exc:
                tally.failed.append(str(exc))
                continue
            tally.copied += 1
            tally.copied_bytes += size

    await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
    return tally
