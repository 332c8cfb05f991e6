"""Finishing an upload on object storage (moto_server, through a recording loopback proxy).

- The copy into the content-addressed key is staged before the metadata write transaction (every replica's
  writers wait for that transaction); the commit inside it only checks, and copies again if garbage collection
  removed the staged object in between.
- S3 copies at most 5 GiB server-side (``CopyObject``): beyond the store's copy limit the bytes are streamed, so
  large layers still commit. S3's refusal is played by the proxy answering 400 to every request carrying
  ``x-amz-copy-source``; the limit is lowered so the test moves megabytes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator

import obstore
import pytest
from obstore.store import S3Store

from dockyard.oci.digest import Digest
from dockyard.server.storage.objects import S3_COPY_LIMIT, ObjectBlobStore, ObjectUploadStore
from tests.support.images import random_bytes
from tests.support.objectstores import Emulator
from tests.support.proxy import FaultProxy

LIMIT = 1024 * 1024
COPY_HEADER = "x-amz-copy-source"


@pytest.fixture
def s3_behind_proxy(object_storage: Callable[[str], Emulator]) -> Iterator[tuple[S3Store, FaultProxy]]:
    """An obstore S3 client of a fresh moto bucket, reached through a recording fault proxy."""
    emulator = object_storage("s3")
    bucket = emulator.new_url().removeprefix("s3://").split("/")[0]
    with FaultProxy(emulator.endpoint) as proxy:
        env = emulator.env()
        store = S3Store(bucket, prefix="registry", endpoint=proxy.url, region=env["AWS_REGION"],
                        access_key_id=env["AWS_ACCESS_KEY_ID"], secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        client_options={"allow_http": True})
        yield store, proxy


async def _body(data: bytes, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start:start + piece]


def _push(uploads: ObjectUploadStore, data: bytes, parts: int, between: Callable[[Digest], None] | None = None
          ) -> Digest:
    """Upload ``data`` in ``parts`` appended bodies, seal, verify, stage and commit it (``between`` runs after the
    stage); its digest."""
    state = uploads.create("big/layer")
    step = -(-len(data) // parts)

    async def finish() -> Digest:
        for start in range(0, len(data), step):
            await uploads.append(state.id, _body(data[start:start + step]))
        async with uploads.sealed(state.id, "sha256") as (text, size):
            assert size == len(data)
            digest = Digest.parse(text)
            await asyncio.to_thread(uploads.stage, state.id, digest)
            if between is not None:
                between(digest)
            await asyncio.to_thread(uploads.commit, state.id, digest)
        return digest

    return asyncio.run(finish())


def _key(digest: Digest) -> str:
    return f"blobs/sha256/{digest.hex[:2]}/{digest.hex}"


def _copies_into_blobs(proxy: FaultProxy) -> list[str]:
    return [seen.path for seen in proxy.seen
            if "/blobs/" in seen.path and COPY_HEADER in {name.lower() for name in seen.headers}]


def _stored(store: S3Store, digest: Digest) -> bytes:
    return bytes(obstore.get(store, _key(digest)).bytes())


def test_s3_gets_the_copy_limit_by_default(s3_behind_proxy: tuple[S3Store, FaultProxy]) -> None:
    store, _ = s3_behind_proxy
    assert ObjectBlobStore(store).copy_limit == S3_COPY_LIMIT == 5 * 1024**3


@pytest.mark.parametrize("parts", [1, 3], ids=["one-part", "three-parts"])
def test_an_upload_beyond_the_copy_limit_is_streamed(s3_behind_proxy: tuple[S3Store, FaultProxy], parts: int) -> None:
    store, proxy = s3_behind_proxy
    proxy.inject_status(400, header=COPY_HEADER, times=None)  # S3: "larger than the maximum allowable size"
    uploads = ObjectUploadStore(ObjectBlobStore(store, copy_limit=LIMIT))
    data = random_bytes(3 * LIMIT + 12345)

    digest = _push(uploads, data, parts)

    assert digest.hex == hashlib.sha256(data).hexdigest()
    assert _stored(store, digest) == data
    assert not [seen for seen in proxy.seen if seen.fault is not None]  # no copy was even attempted


def test_an_upload_within_the_limit_is_copied_server_side(s3_behind_proxy: tuple[S3Store, FaultProxy]) -> None:
    store, proxy = s3_behind_proxy
    uploads = ObjectUploadStore(ObjectBlobStore(store, copy_limit=LIMIT))
    data = random_bytes(LIMIT // 2)

    digest = _push(uploads, data, 1)

    assert _stored(store, digest) == data
    copies = [seen for seen in proxy.seen if COPY_HEADER in {name.lower() for name in seen.headers}]
    assert len(copies) == 2  # the private sealed copy, then the commit into the content-addressed key


def test_the_blob_is_in_place_after_the_stage_and_the_commit_copies_nothing_more(
    s3_behind_proxy: tuple[S3Store, FaultProxy],
) -> None:
    store, proxy = s3_behind_proxy
    uploads = ObjectUploadStore(ObjectBlobStore(store))
    data = random_bytes(300_000)
    staged: list[bytes] = []

    digest = _push(uploads, data, 2, between=lambda digest: staged.append(_stored(store, digest)))

    assert staged == [data]  # in place before the commit's transaction
    assert len(_copies_into_blobs(proxy)) == 1  # the commit only checked it
    assert _stored(store, digest) == data


def test_the_commit_copies_again_when_gc_removed_the_staged_blob(s3_behind_proxy: tuple[S3Store, FaultProxy]) -> None:
    store, proxy = s3_behind_proxy
    uploads = ObjectUploadStore(ObjectBlobStore(store))
    data = random_bytes(200_000)

    digest = _push(uploads, data, 1, between=lambda digest: obstore.delete(store, _key(digest)))

    assert _stored(store, digest) == data
    assert len(_copies_into_blobs(proxy)) == 2
