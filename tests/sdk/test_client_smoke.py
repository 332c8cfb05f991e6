"""Quick end-to-end checks of the SDK against real registries (the broad suite lives next to this file)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from dockyard import ContainerRegistryClient, ResourceNotFoundError, UnsupportedOperationError
from dockyard.credentials import BasicCredential
from tests.conftest import TEST_USER


def _image(client: ContainerRegistryClient, repo: str, tag: str, layer: bytes) -> str:
    config = json.dumps({"architecture": "arm64", "os": "linux", "created": "2024-05-06T07:08:09Z"}).encode()
    config_digest, _ = client.upload_blob(repo, config)
    layer_digest, _ = client.upload_blob(repo, layer)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }
    return client.set_manifest(repo, manifest, tag=tag)


@pytest.fixture(params=["distribution", "dockyard"])
def registry(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_server")


def test_round_trip(registry: Any, repo_name: str, tmp_path: Path) -> None:
    layer = os.urandom(3 * 1024 * 1024 + 17)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    with ContainerRegistryClient(registry.url) as client:
        digest = _image(client, repo_name, "v1", layer)
        assert client.blob_exists(repo_name, layer_digest)
        assert repo_name in list(client.list_repository_names())
        tags = list(client.list_tag_properties(repo_name))
        assert [(t.name, t.digest, t.repository_name) for t in tags] == [("v1", digest, repo_name)]
        props = client.get_manifest_properties(repo_name, "v1")
        assert props.digest == digest and props.architecture == "arm64" and props.operating_system == "linux"
        assert props.fully_qualified_reference.endswith(f"{repo_name}@{digest}")
        result = client.get_manifest(repo_name, "v1")
        assert result.digest == digest and result.manifest["layers"][0]["digest"] == layer_digest
        assert b"".join(client.download_blob(repo_name, layer_digest)) == layer
        assert b"".join(client.download_blob(repo_name, layer_digest, offset=1000)) == layer[1000:]
        target = tmp_path / "layer"
        assert client.download_blob_to_file(repo_name, layer_digest, target) == len(layer)
        assert target.read_bytes() == layer
        client.delete_tag(repo_name, "v1")
        client.delete_tag(repo_name, "v1")  # a missing tag is not an error
        assert list(client.list_tag_properties(repo_name)) == []
        with pytest.raises(ResourceNotFoundError):
            client.get_tag_properties(repo_name, "v1")


def test_empty_blob_and_stream_upload(distribution_server: Any, repo_name: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(100_000))
    with ContainerRegistryClient(distribution_server.url) as client:
        digest, size = client.upload_blob(repo_name, b"")
        assert size == 0 and b"".join(client.download_blob(repo_name, digest)) == b""
        assert client.download_blob_to_file(repo_name, digest, tmp_path / "empty") == 0
        with source.open("rb") as stream:
            digest, size = client.upload_blob(repo_name, stream)
        assert size == 100_000 and client.upload_blob(repo_name, source, digest=digest) == (digest, size)


def test_locks_need_acr_api(distribution_server: Any, repo_name: str) -> None:
    with ContainerRegistryClient(distribution_server.url) as client:
        assert client.has_acr_api() is False
        with pytest.raises(UnsupportedOperationError, match="/acr/v1"):
            client.update_repository_properties(repo_name, can_delete=False)


def test_basic_auth_distribution(distribution_auth_server: Any, repo_name: str) -> None:
    with ContainerRegistryClient(distribution_auth_server.url, BasicCredential(*TEST_USER)) as client:
        digest = _image(client, repo_name, "v1", b"layer")
        assert client.get_manifest(repo_name, digest).digest == digest


def _blob_file(data_dir: Path, digest: str) -> Path:
    found = [p for p in data_dir.rglob(digest.split(":", 1)[1]) if p.is_file()]
    assert len(found) == 1, found
    return found[0]


def test_big_blob_parallel_ranges_sync_and_async(fresh_dockyard: Any, tmp_path: Path) -> None:
    server = fresh_dockyard.start()
    out = tmp_path / "downloads"
    out.mkdir()
    data = os.urandom(70 * 1024 * 1024 + 123)  # past the parallel threshold
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    seen: list[int] = []
    with ContainerRegistryClient(server.url, max_concurrency=3) as client:
        assert client.upload_blob("big", data) == (digest, len(data))
        assert client.download_blob_to_file("big", digest, out / "sync.bin", progress=seen.append) == len(data)
    assert (out / "sync.bin").read_bytes() == data and sum(seen) == len(data)

    import asyncio

    from dockyard.aio import ContainerRegistryClient as AsyncClient

    async def fetch() -> int:
        async with AsyncClient(server.url) as client:
            return await client.download_blob_to_file("big", digest, out / "async.bin")

    assert asyncio.run(fetch()) == len(data)
    assert (out / "async.bin").read_bytes() == data

    # Corrupt the stored bytes: the download fails and leaves no file behind.
    stored = _blob_file(server.data_dir, digest)
    with stored.open("r+b") as handle:
        handle.seek(len(data) - 10)
        handle.write(b"0123456789")
    from dockyard import DigestValidationError

    with ContainerRegistryClient(server.url) as client, pytest.raises(DigestValidationError):
        client.download_blob_to_file("big", digest, out / "bad.bin")
    assert sorted(p.name for p in out.iterdir()) == ["async.bin", "sync.bin"]


def test_continuation_tokens_resume_listings(registry: Any, repo_name: str) -> None:
    with ContainerRegistryClient(registry.url) as client:
        for tag in ("a", "b", "c"):
            _image(client, repo_name, tag, tag.encode())
        pages = client.list_tag_properties(repo_name, results_per_page=1).by_page()
        first = [t.name for t in next(pages)]
        token = pages.continuation_token
        assert token is not None
        rest = [t.name for page in client.list_tag_properties(repo_name, results_per_page=1).by_page(token)
                for t in page]
        assert sorted(first + rest) == ["a", "b", "c"] and len(rest) == 2
