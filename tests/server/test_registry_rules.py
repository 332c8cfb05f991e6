"""The registry's rules over its storage protocols: the same rules, the same answers, on the SQLite and file
stores ``dockyard serve`` uses, on PostgreSQL metadata, on object storage (S3 in moto_server, Azure Blob in
Azurite) and on the in-memory stores (nothing in the rules depends on a backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from dockyard.server import errors as e
from dockyard.server.registry import Registry
from dockyard.server.storage.memory import MemoryBlobStore, MemoryMetadataStore, MemoryUploadStore
from tests.support.images import Content, make_artifact, make_image
from tests.support.objectstores import Emulator


@pytest.fixture(params=["sqlite", "postgres", "memory", "s3", "az"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, object_storage: Callable[[str], Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Registry]:
    if request.param == "sqlite":
        reg = Registry.open(tmp_path / "data")
    elif request.param == "postgres":
        reg = Registry.open(tmp_path / "data", request.getfixturevalue("postgres_url"))
    elif request.param in ("s3", "az"):
        emulator = object_storage(request.param)
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        reg = Registry.open(tmp_path / "data", storage_url=emulator.new_url())
    else:
        blobs = MemoryBlobStore()
        reg = Registry(MemoryMetadataStore(), blobs, MemoryUploadStore(blobs))
    try:
        yield reg
    finally:
        reg.close()


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def push(reg: Registry, repo: str, content: Content, tag: str | None = None) -> str:
    for child in content.children:
        await push(reg, repo, child)
    for blob in content.blobs:
        await reg.put_blob(repo, _body(blob.data), blob.digest)
    result = await reg.put_manifest(repo, tag or content.digest, content.body, content.media_type)
    return result.digest


async def test_a_manifest_needs_its_blobs_and_reads_back_byte_for_byte(registry: Registry) -> None:
    image = make_image(seed="rules-1", layers=2)
    with pytest.raises(e.RegistryError) as refused:
        await registry.put_manifest("team/app", "v1", image.body, image.media_type)
    assert (refused.value.status, refused.value.code) == (400, "MANIFEST_BLOB_UNKNOWN")

    digest = await push(registry, "team/app", image, "v1")
    stored = await registry.get_manifest("team/app", "v1")
    assert (stored.digest, stored.content) == (digest, image.body)
    assert await registry.tag_names("team/app", None, None) == ["v1"]
    assert await registry.catalog(None, None) == ["team/app"]
    summary = await registry.repository("team/app")
    assert (summary.manifest_count, summary.tag_count) == (1, 1)


async def test_locks_refuse_writes_and_deletes(registry: Registry) -> None:
    image = make_image(seed="rules-2", layers=1)
    digest = await push(registry, "locked", image, "v1")
    await registry.update_attributes("locked", "tag", "v1", {"write_enabled": False})

    other = make_image(seed="rules-2b", layers=1)
    with pytest.raises(e.RegistryError) as refused:
        await push(registry, "locked", other, "v1")
    assert (refused.value.status, refused.value.code) == (405, "DENIED")
    with pytest.raises(e.RegistryError) as undeletable:
        await registry.delete_repository("locked")
    assert undeletable.value.status == 405
    # A layer of a locked manifest stays.
    with pytest.raises(e.RegistryError) as kept:
        await registry.delete_blob("locked", image.blobs[-1].digest)
    assert kept.value.status == 405

    await registry.update_attributes("locked", "tag", "v1", {"write_enabled": True})
    assert (await registry.tag("locked", "v1")).attributes.write_enabled
    await registry.delete_manifest("locked", digest)
    with pytest.raises(e.RegistryError) as gone:
        await registry.get_manifest("locked", "v1")
    assert gone.value.code == "MANIFEST_UNKNOWN"


async def test_tag_pages_in_time_order(registry: Registry) -> None:
    image = make_image(seed="rules-3", layers=1)
    for tag in ("c", "a", "b"):
        await push(registry, "paged", image, tag)
    assert [t.name for t in await registry.list_tags("paged", None, None, "timeasc")] == ["c", "a", "b"]
    assert [t.name for t in await registry.list_tags("paged", "a", 5, "timedesc")] == ["c"]
    assert [t.name for t in await registry.list_tags("paged", "a", None)] == ["b", "c"]
    assert await registry.list_tags("paged", "gone", None, "timeasc") == []


async def test_referrers_and_upload_offsets(registry: Registry) -> None:
    image = make_image(seed="rules-4", layers=1)
    await push(registry, "refs", image, "v1")
    signature = make_artifact({"sig": b"signed"}, artifact_type="application/vnd.test.sig", subject=image)
    sig_digest = await push(registry, "refs", signature)
    found = await registry.referrers("refs", image.digest, None)
    assert [(r.digest, r.artifact_type) for r in found] == [(sig_digest, "application/vnd.test.sig")]
    assert await registry.referrers("refs", image.digest, "application/other") == []

    state = await registry.start_upload("refs")
    await registry.append_upload("refs", state.id, _body(b"abc"), 0)
    with pytest.raises(e.UploadRangeError) as misplaced:
        await registry.append_upload("refs", state.id, _body(b"def"), 1)
    assert (misplaced.value.status, misplaced.value.state.offset) == (416, 3)
    assert (await registry.upload("refs", state.id)).offset == 3
