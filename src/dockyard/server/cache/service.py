"""The pull-through cache: pulls of repositories under a cache rule are answered from upstream on a miss.

* A manifest (or index) missing here is fetched from the rule's upstream, verified, stored through the registry's
  manifest rules (creating the repository and the tag) and served. An index is stored alone: its children, and
  every manifest's blobs, are fetched only when a client asks for them, so only the platforms pulled are fetched.
* A blob missing here streams to the client that asked for it while it is written to an upload session; the
  session becomes the blob only once its digest verifies (a failed, short or wrong fetch leaves nothing). That
  is the one hash of the bytes: the last chunk reaches the client only once it matched. The fill runs apart from the
  request: a client that goes away does not stop it.
* Concurrent misses of the same blob or manifest make one upstream fetch (see :mod:`.flight`): other requests
  in this process, in other worker processes and on other servers sharing the metadata database wait for it
  and are served from storage.
* A cached tag is served as it is for ``ttl`` seconds after it was fetched or checked; then one ``HEAD`` upstream
  compares digests (a changed tag is fetched again). When the upstream is unreachable, failing or rate-limiting,
  the cached copy is served (see :mod:`.upstream` for the backoff). Digest references are never checked again.
* Pushes and deletes into a cached repository are refused (403 DENIED naming the rule) unless the rule allows
  them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone

import anyio

from ...oci import mediatypes as mt
from ...oci.digest import is_digest_reference
from ...oci.manifest import InvalidManifestError, parse_manifest
from ...oci.names import is_valid_tag
from .. import errors as e
from ..registry import OpenedBlob, Registry, check_digest
from ..storage.records import ManifestInfo
from .flight import Flights, Renewal
from .rules import CacheRule, CacheRules
from .upstream import (
    CHECK_TIMEOUT,
    FETCH_TIMEOUT,
    Upstream,
    UpstreamError,
    UpstreamMissing,
    resolve_credential,
)

log = logging.getLogger("dockyard.server.cache")

#: Chunks of a fill waiting for the client that streams them; and seconds a slow client may hold the fill back
#: before it is cut off (the fill goes on and others are served from storage).
TEE_CHUNKS = 16
SLOW_CLIENT = 30.0
#: Most bytes of buffered chunks sent to the client as one message.
COALESCE = 1024 * 1024
#: Entries remembered per process: tag check times and blob sizes seen in fetched manifests.
MEMORY_ENTRIES = 100_000

_MISSING = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN"})


class Tee:
    """The chunks of one fill for the one request streaming them, with bounded buffering."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._changed = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._closed = False
        self._finished = False
        self._error: BaseException | None = None

    def close(self) -> None:
        """The reader is gone: drop what is buffered and accept nothing more."""
        self._closed = True
        self._chunks.clear()
        self._space.set()

    async def offer(self, chunk: bytes) -> None:
        """Hand ``chunk`` to the reader; waits while the reader is :data:`TEE_CHUNKS` behind (then cuts it off)."""
        while not self._closed and len(self._chunks) >= TEE_CHUNKS:
            self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), SLOW_CLIENT)
            except TimeoutError:
                log.warning("a client reading a cache fill fell %d s behind; it is cut off", SLOW_CLIENT)
                self._error = e.RegistryError(503, "UNAVAILABLE", "the client read too slowly")
                self.close()
                self._changed.set()
        if not self._closed:
            self._chunks.append(chunk)
            self._changed.set()

    def finish(self, error: BaseException | None) -> None:
        """No more chunks: the reader ends (raising ``error`` if given, unless it had all the bytes already)."""
        if self._finished:
            return
        self._finished = True
        if error is not None and self._error is None:
            self._error = error
        self._changed.set()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The chunks in order; raises when the fill failed (the client's response is then cut short)."""
        try:
            while True:
                if self._chunks:
                    # What piled up goes out as one message (fewer, larger sends), at most COALESCE bytes.
                    parts = [self._chunks.popleft()]
                    size = len(parts[0])
                    while self._chunks and size + len(self._chunks[0]) <= COALESCE:
                        size += len(self._chunks[0])
                        parts.append(self._chunks.popleft())
                    self._space.set()
                    yield parts[0] if len(parts) == 1 else b"".join(parts)
                    continue
                if self._error is not None:
                    raise self._error
                if self._finished or self._closed:
                    return
                self._changed.clear()
                await self._changed.wait()
        finally:
            self.close()


@dataclass(frozen=True)
class BlobAnswer:
    """What a blob GET/HEAD in a cached repository is answered with: the stored blob, or the bytes of a running
    fill (``stream``), or for a HEAD only the size."""

    digest: str
    size: int
    opened: OpenedBlob | None = None
    stream: AsyncIterator[bytes] | None = None


def _blob_sizes(body: bytes, content_type: str | None) -> list[tuple[str, int]]:
    try:
        return [(desc.digest, desc.size) for desc in parse_manifest(body, content_type).blobs()]
    except InvalidManifestError:
        return []


class PullThroughCache:
    """The cache rules of one server process over its registry."""

    def __init__(self, registry: Registry, rules: CacheRules, *, check_timeout: float = CHECK_TIMEOUT,
                 fetch_timeout: float = FETCH_TIMEOUT) -> None:
        self.registry = registry
        self.rules = rules
        self._check_timeout = check_timeout
        self._fetch_timeout = fetch_timeout
        self._upstreams: dict[str, Upstream] = {}
        self._flights: Flights[object] = Flights(registry)
        self._checks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._checked: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()
        self._sizes: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()

    async def start(self) -> None:
        """Resolve every rule's upstream credentials (off the event loop)."""
        if self.rules.rules:
            # The HTTP client's async backend is imported on its first use: here, not in the first pull (~30 ms).
            await anyio.sleep(0)
        for rule in self.rules.rules:
            credential = await asyncio.to_thread(resolve_credential, rule)
            upstream = Upstream(rule, credential, check_timeout=self._check_timeout,
                                fetch_timeout=self._fetch_timeout)
            # Built now (TLS context, connection pool), so the first pull does not pay for it.
            await asyncio.to_thread(upstream.prepare)
            self._upstreams[rule.target] = upstream

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.close()

    def _target(self, name: str) -> tuple[CacheRule, str, Upstream] | None:
        found = self.rules.match(name) if self.rules else None
        if found is None:
            return None
        rule, upstream_name = found
        return rule, upstream_name, self._upstreams[rule.target]

    # -- pushes ----------------------------------------------------------------------------------------------

    def refusal(self, name: str) -> e.RegistryError | None:
        """403 DENIED for a push or delete into a cached repository whose rule does not allow it, else None."""
        found = self.rules.match(name) if self.rules else None
        if found is None or found[0].allow_push:
            return None
        rule, upstream_name = found
        return e.denied(
            f"repository {name} is a pull-through cache of {rule.endpoint}/{upstream_name} (cache rule "
            f"{rule.text}); pushes and deletes are refused unless the rule sets allow_push",
            {"rule": rule.text},
        )

    # -- manifests ------------------------------------------------------------------------------------------

    async def get_manifest(self, name: str, reference: str) -> ManifestInfo:
        """The manifest for a tag or digest: stored, or fetched from upstream on a miss (tags checked after ttl)."""
        target = self._target(name)
        is_digest = is_digest_reference(reference)
        if target is None or not (is_digest or is_valid_tag(reference)):
            return await self.registry.get_manifest(name, reference)
        if is_digest:
            check_digest(reference)
        rule, upstream_name, upstream = target
        local = await self._local_manifest(name, reference)
        if local is None:
            await self._flights.run(
                f"manifest:{name}:{reference}",
                lambda: self._local_manifest(name, reference),
                lambda renew: self._fill_manifest(name, reference, upstream, upstream_name),
            )
            return await self.registry.get_manifest(name, reference)
        if is_digest or await self._fresh(rule, name, reference):
            return local
        await self._check_tag(name, reference, local.digest, upstream, upstream_name)
        return await self.registry.get_manifest(name, reference)

    async def _local_manifest(self, name: str, reference: str) -> ManifestInfo | None:
        try:
            return await self.registry.get_manifest(name, reference)
        except e.RegistryError as exc:
            if exc.code in _MISSING:
                return None
            raise

    async def _fresh(self, rule: CacheRule, name: str, tag: str) -> bool:
        """Whether the tag was fetched or checked less than ``ttl`` ago: as this process remembers it, else as the
        tag's ``updated`` time says (set when a fill or a change stored it, by any process or server)."""
        checked = self._checked.get((name, tag))
        if checked is None:
            try:
                record = await self.registry.tag(name, tag)
                updated = datetime.strptime(record.updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            except (e.RegistryError, ValueError):
                return False
            checked = time.monotonic() - (time.time() - updated.timestamp())
            self._remember_check(name, tag, checked)
        return time.monotonic() - checked < rule.ttl

    def _mark_checked(self, name: str, tag: str) -> None:
        self._remember_check(name, tag, time.monotonic())

    def _remember_check(self, name: str, tag: str, when: float) -> None:
        self._checked[(name, tag)] = when
        self._checked.move_to_end((name, tag))
        while len(self._checked) > MEMORY_ENTRIES:
            self._checked.popitem(last=False)

    async def _fill_manifest(self, name: str, reference: str, upstream: Upstream, upstream_name: str) -> ManifestInfo:
        try:
            fetched = await upstream.get_manifest(upstream_name, reference)
        except UpstreamMissing:
            raise e.manifest_unknown(reference) from None
        except UpstreamError as exc:
            raise exc.error from None
        await self._store(name, reference, fetched.content, fetched.media_type)
        if not is_digest_reference(reference):
            self._mark_checked(name, reference)
        return await self.registry.get_manifest(name, reference)

    async def _store(self, name: str, reference: str, body: bytes, media_type: str | None) -> None:
        content_type = media_type if media_type in mt.MANIFEST_TYPES else None
        await self.registry.store_fetched_manifest(name, reference, body, content_type)
        # The sizes its descriptors give its blobs (parsed off the event loop: a manifest may be 4 MiB).
        for digest, size in await asyncio.to_thread(_blob_sizes, body, content_type):
            self._sizes[(name, digest)] = size
            self._sizes.move_to_end((name, digest))
        while len(self._sizes) > MEMORY_ENTRIES:
            self._sizes.popitem(last=False)

    async def _check_tag(self, name: str, tag: str, digest: str, upstream: Upstream, upstream_name: str) -> None:
        """Compare a stale tag with upstream (one check per tag at a time in this process)."""
        key = (name, tag)
        task = self._checks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._revalidate(name, tag, digest, upstream, upstream_name))
            self._checks[key] = task
            task.add_done_callback(lambda done: self._checks.pop(key, None))
        await asyncio.shield(task)

    async def _revalidate(self, name: str, tag: str, digest: str, upstream: Upstream, upstream_name: str) -> None:
        """One HEAD; a changed tag is fetched again. Any failure keeps the cached copy (served stale)."""
        try:
            current = await upstream.head_manifest(upstream_name, tag)
            if current.digest != digest:
                fetched = await upstream.get_manifest(upstream_name, current.digest)
                await self._store(name, tag, fetched.content, fetched.media_type)
        except UpstreamMissing:
            log.warning("tag %s of %s is gone upstream; the cached copy is still served", tag, name)
        except UpstreamError as exc:
            log.info("serving %s:%s from the cache: %s", name, tag, exc.error.message)
            return
        except e.RegistryError as exc:
            log.warning("cannot update cached %s:%s: %s", name, tag, exc.message)
        self._mark_checked(name, tag)

    # -- blobs ------------------------------------------------------------------------------------------------

    async def open_blob(
        self, name: str, digest: str, *, body: bool, whole: bool = True, redirect: bool = True
    ) -> BlobAnswer:
        """A blob GET (``body``) or HEAD: stored, or (in a cached repository) fetched from upstream on a miss.

        A GET of the ``whole`` blob that starts the fill streams its bytes as they arrive; a ranged GET (or one
        that joins a fill already running) is served from storage once the fill is done. ``redirect=False``: a
        stored blob is streamed even when its store would send the client elsewhere."""
        target = self._target(name)
        try:
            opened = await self.registry.open_blob(name, digest, redirect=redirect)
            return BlobAnswer(str(opened.digest), -1, opened)
        except e.RegistryError as exc:
            if target is None or exc.code != "BLOB_UNKNOWN":
                raise
        digest = str(check_digest(digest))
        if await self.registry.blob_stored(digest) is not None and await self.registry.adopt_blob(name, digest):
            return await self._stored(name, digest, redirect)
        size = self._sizes.get((name, digest))
        if size is None:
            size = await self.registry.descriptor_size(name, digest)
        if size is None:
            # No manifest cached here names it: nothing to fetch (the cache is no open proxy for any digest).
            raise e.blob_unknown(digest)
        if not body:
            return BlobAnswer(digest, size)
        assert target is not None  # a miss outside a cached repository was raised above
        _, upstream_name, upstream = target
        tee = Tee()

        async def fill(renew: Renewal) -> object:
            return await self._fill_blob(name, digest, size, upstream, upstream_name, renew, tee)

        task, started = self._flights.join(f"blob:{digest}", lambda: self.registry.blob_stored(digest), fill)
        if started and whole:
            waiter = asyncio.ensure_future(tee.started.wait())
            try:
                await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if tee.started.is_set():
                return BlobAnswer(digest, size, stream=tee.chunks())
            tee.close()
        else:
            tee.close()
        await asyncio.shield(task)
        return await self._stored(name, digest, redirect)

    async def _stored(self, name: str, digest: str, redirect: bool) -> BlobAnswer:
        await self.registry.adopt_blob(name, digest)
        opened = await self.registry.open_blob(name, digest, redirect=redirect)
        return BlobAnswer(str(opened.digest), -1, opened)

    async def _fill_blob(
        self, name: str, digest: str, size: int, upstream: Upstream, upstream_name: str, renew: Renewal, tee: Tee
    ) -> int:
        """Fetch the blob into an upload session, handing each chunk to ``tee``; commit it once it verifies."""
        session = await self.registry.start_upload(name)
        error: BaseException | None = None
        try:
            try:
                stream = await upstream.open_blob(upstream_name, digest, size)
            except UpstreamMissing:
                raise e.blob_unknown(digest) from None
            except UpstreamError as exc:
                raise exc.error from None
            tee.started.set()
            last: list[bytes] = []
            try:

                async def pieces() -> AsyncIterator[bytes]:
                    # The client gets each chunk as it arrives, except the last: that one only once the session's
                    # hash of the whole blob matched its digest, so a client never holds a complete blob that is
                    # wrong (a mismatch cuts its response short instead).
                    held: bytes | None = None
                    async for chunk in stream:
                        if held is not None:
                            await tee.offer(held)
                        held = chunk
                        renew()
                        yield chunk
                    if held is not None:
                        last.append(held)

                try:
                    state = await self.registry.append_upload(name, session.id, pieces(), None)
                except UpstreamError as exc:
                    raise exc.error from None
                if self.registry.received_digest(session.id, digest.partition(":")[0], state.offset) == digest:
                    # The session hashed exactly the bytes the client was sent: it may have the last chunk
                    # while the session is made durable and committed.
                    await self._release(tee, last)
                try:
                    await self.registry.finish_upload(name, session.id, digest)
                except e.RegistryError as exc:
                    if exc.code != "DIGEST_INVALID":
                        raise
                    raise upstream.invalid(f"blob {upstream_name}@{digest}", exc.message).error from None
                await self._release(tee, last)
            finally:
                await stream.close()
        except BaseException as exc:
            error = exc
            log.warning("filling blob %s of %s from upstream failed: %s", digest, name,
                        getattr(exc, "message", None) or repr(exc))
            raise
        finally:
            tee.finish(error)
            with contextlib.suppress(Exception):
                await self.registry.cancel_upload(name, session.id)
        return size

    @staticmethod
    async def _release(tee: Tee, last: list[bytes]) -> None:
        """The held last chunk to the client, which then has the whole blob (once)."""
        while last:
            await tee.offer(last.pop())
        tee.finish(None)
