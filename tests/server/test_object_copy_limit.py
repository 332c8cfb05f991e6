"""S3 copies at most 5 GiB server-side (``CopyObject``): a finished upload beyond the store's copy limit is copied by
streaming it, so large layers still commit. S3's refusal is played by a loopback proxy in front of moto_server that
answers 400 to every request carrying ``x-amz-copy-source``; the limit is lowered so the test moves megabytes."""

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


def _push(uploads: ObjectUploadStore, data: bytes, parts: int) -> Digest:
    """Upload ``data`` in ``parts`` appended bodies, seal, verify and commit it; its digest."""
    state = uploads.create("big/layer")
    step = -(-len(data) // parts)

    async def finish() -> Digest:
        for start in range(0, len(data), step):
            await uploads.append(state.id, _body(data[start:start + step]))
        async with uploads.sealed(state.id, "sha256") as (digest, size):
            assert size == len(data)
            await asyncio.to_thread(uploads.commit, state.id, Digest.parse(digest))
        return Digest.parse(digest)

    return asyncio.run(finish())


def _stored(store: S3Store, digest: Digest) -> bytes:
    return bytes(obstore.get(store, f"blobs/sha256/{digest.hex[:2]}/{digest.hex}").bytes())


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
