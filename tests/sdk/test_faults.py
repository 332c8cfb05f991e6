"""Faults against real servers: a registry killed mid-download, throttling, corruption, dropped sockets.

The server is a real ``dockyard serve``; throttling, corruption and dropped connections come from
:class:`tests.support.proxy.FaultProxy`, a loopback proxy the client uses as its endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard import ContainerRegistryClient, DigestValidationError, HttpResponseError, ServiceRequestError
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from tests.sdk.conftest import Seeder
from tests.support.images import Content, upload_blob
from tests.support.proxy import FaultProxy
from tests.support.servers import DockyardServer, free_port

MiB = 1024 * 1024


def _push_blob(url: str, repository: str, data: bytes) -> str:
    with httpx.Client(timeout=300.0) as http:
        return upload_blob(http, url, repository, data)


def _blob_gets(log: Path, repository: str, digest: str) -> list[dict]:
    path = f"/v2/{repository}/blobs/{digest}"
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, filter(None, lines)) if e["method"] == "GET" and e["path"] == path]


# -- (a) the registry is killed and restarted in the middle of a download -----------------------------


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator[tuple[DockyardServer, Path]]:
    log = tmp_path / "access.jsonl"
    server = DockyardServer(tmp_path / "server", "--access-log", str(log))
    server.start()
    try:
        yield server, log
    finally:
        server.stop()


@pytest.fixture
def big_blob(logged_server: tuple[DockyardServer, Path], repo_name: str) -> tuple[str, bytes]:
    server, _ = logged_server
    data = os.urandom(64 * MiB)
    return _push_blob(server.url, repo_name, data), data


def test_download_survives_server_restart(
    logged_server: tuple[DockyardServer, Path], big_blob: tuple[str, bytes], repo_name: str
) -> None:
    server, log = logged_server
    digest, data = big_blob
    hasher = hashlib.sha256()
    received = 0
    restarted = False
    with ContainerRegistryClient(server.url, None) as client:
        for chunk in client.download_blob(repo_name, digest):
            hasher.update(chunk)
            received += len(chunk)
            if not restarted and received >= 2 * MiB:
                # The consumer pauses here; meanwhile the registry dies and comes back on the same port and data.
                server.kill()
                server.start()
                restarted = True
    assert restarted
    assert received == len(data)
    assert "sha256:" + hasher.hexdigest() == digest
    gets = _blob_gets(log, repo_name, digest)
    assert gets, "the restarted server logged no blob request"
    assert gets[-1]["status"] == 206  # the resumed request asked for the remaining range


async def test_async_download_survives_server_restart(
    logged_server: tuple[DockyardServer, Path], big_blob: tuple[str, bytes], repo_name: str
) -> None:
    server, log = logged_server
    digest, data = big_blob
    hasher = hashlib.sha256()
    received = 0
    restarted = False
    async with AsyncContainerRegistryClient(server.url, None) as client:
        stream = await client.download_blob(repo_name, digest)
        async for chunk in stream:
            hasher.update(chunk)
            received += len(chunk)
            if not restarted and received >= 2 * MiB:
                server.kill()
                server.start()
                restarted = True
    assert restarted and received == len(data)
    assert "sha256:" + hasher.hexdigest() == digest
    assert _blob_gets(log, repo_name, digest)[-1]["status"] == 206


def test_download_to_file_survives_server_restart(
    logged_server: tuple[DockyardServer, Path], big_blob: tuple[str, bytes], repo_name: str, tmp_path: Path
) -> None:
    server, _ = logged_server
    digest, data = big_blob
    done = [0]
    restarted = []

    def progress(transferred: int) -> None:
        done[0] += transferred
        if not restarted and done[0] >= 8 * MiB:
            restarted.append(True)
            server.kill()
            server.start()

    target = tmp_path / "big.bin"
    with ContainerRegistryClient(server.url, None) as client:
        assert client.download_blob_to_file(repo_name, digest, target, progress=progress) == len(data)
    assert restarted
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["access.jsonl", "big.bin", "server"]  # no temp files


# -- the proxy ----------------------------------------------------------------------------------------


@pytest.fixture
def proxy(dockyard_server: DockyardServer) -> Iterator[FaultProxy]:
    with FaultProxy(dockyard_server.url) as running:
        yield running


@pytest.fixture
def image(dockyard_server: DockyardServer, repo_name: str) -> Content:
    with httpx.Client(timeout=60.0) as http:
        return Seeder(dockyard_server.url, http).image(repo_name, "v1", layer_size=3 * MiB)


# -- (b) throttling and unavailable: retried ----------------------------------------------------------


def test_429_and_503_are_retried(proxy: FaultProxy, image: Content, repo_name: str) -> None:
    manifests = f"/v2/{repo_name}/manifests/"
    proxy.inject_status(429, headers={"Retry-After": "1"}, method="GET", path_contains=manifests)
    proxy.inject_status(503, method="GET", path_contains=manifests)
    with ContainerRegistryClient(proxy.url, None) as client:
        result = client.get_manifest(repo_name, "v1")
        assert result.digest == image.digest
        assert [s.status for s in proxy.requests("GET", manifests)] == [429, 503, 200]

        tags = f"/acr/v1/{repo_name}/_tags"
        proxy.inject_status(503, method="GET", path_contains=tags)
        proxy.inject_status(429, headers={"Retry-After": "1"}, method="GET", path_contains=tags)
        assert client.get_tag_properties(repo_name, "v1").digest == image.digest
        assert [s.status for s in proxy.requests("GET", tags)] == [503, 429, 200]

        layer = image.blobs[1]
        blob_path = f"/v2/{repo_name}/blobs/{layer.digest}"
        proxy.inject_status(503, method="GET", path_contains=blob_path)
        assert b"".join(client.download_blob(repo_name, layer.digest)) == layer.data
        statuses = [s.status for s in proxy.requests("GET", blob_path)]
        assert statuses[0] == 503 and statuses[1] in (200, 206)


def test_uploads_are_retried(proxy: FaultProxy, repo_name: str, tmp_path: Path) -> None:
    # Big enough to go up in several requests with bodies, which a retry must send again from the file.
    uploads = f"/v2/{repo_name}/blobs/uploads/"
    proxy.inject_status(503, method="POST", path_contains=uploads)
    proxy.inject_status(429, headers={"Retry-After": "1"}, method="PATCH", path_contains=uploads)
    proxy.inject_status(429, headers={"Retry-After": "1"}, method="PUT", path_contains=uploads)
    data = os.urandom(20 * MiB + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    with ContainerRegistryClient(proxy.url, None) as client:
        digest, size = client.upload_blob(repo_name, path)
        assert (digest, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
        assert b"".join(client.download_blob(repo_name, digest)) == data
    seen = proxy.requests(path_contains=uploads)
    assert (seen[0].method, seen[0].status) == ("POST", 503)
    assert (seen[1].method, seen[1].status) == ("POST", 202)
    assert any(s.status == 429 and s.method in ("PATCH", "PUT") for s in seen)
    assert (seen[-1].method, seen[-1].status) == ("PUT", 201)


def test_retries_are_bounded(proxy: FaultProxy, image: Content, repo_name: str) -> None:
    manifests = f"/v2/{repo_name}/manifests/"
    proxy.inject_status(503, method="GET", path_contains=manifests, times=None)
    with ContainerRegistryClient(proxy.url, None, retry_total=2) as client, pytest.raises(HttpResponseError) as caught:
        client.get_manifest(repo_name, "v1")
    assert caught.value.status_code == 503
    assert len(proxy.requests("GET", manifests)) == 3  # the first try and two retries


async def test_async_429_is_retried(proxy: FaultProxy, image: Content, repo_name: str) -> None:
    tags = f"/acr/v1/{repo_name}/_tags"
    proxy.inject_status(429, headers={"Retry-After": "1"}, method="GET", path_contains=tags)
    proxy.inject_status(503, method="GET", path_contains=tags)
    async with AsyncContainerRegistryClient(proxy.url, None) as client:
        assert (await client.get_tag_properties(repo_name, "v1")).digest == image.digest
    assert [s.status for s in proxy.requests("GET", tags)] == [429, 503, 200]


# -- (c) corrupted bytes ------------------------------------------------------------------------------


def test_corrupted_blob_raises_and_leaves_no_file(proxy: FaultProxy, image: Content, repo_name: str,
                                                  tmp_path: Path) -> None:
    layer = image.blobs[1]
    proxy.inject_corruption(path_contains=f"/blobs/{layer.digest}")
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    target = target_dir / "layer.bin"
    with ContainerRegistryClient(proxy.url, None) as client:
        with pytest.raises(DigestValidationError):
            for _ in client.download_blob(repo_name, layer.digest):
                pass
        with pytest.raises(DigestValidationError):
            client.download_blob_to_file(repo_name, layer.digest, target)
    assert list(target_dir.iterdir()) == []  # neither the target nor a temp file is left behind
    assert proxy.requests("GET", f"/blobs/{layer.digest}")


async def test_async_corrupted_blob_raises(proxy: FaultProxy, image: Content, repo_name: str, tmp_path: Path) -> None:
    layer = image.blobs[1]
    proxy.inject_corruption(path_contains=f"/blobs/{layer.digest}")
    target = tmp_path / "layer.bin"
    async with AsyncContainerRegistryClient(proxy.url, None) as client:
        stream = await client.download_blob(repo_name, layer.digest)
        with pytest.raises(DigestValidationError):
            async for _ in stream:
                pass
        with pytest.raises(DigestValidationError):
            await client.download_blob_to_file(repo_name, layer.digest, target)
    assert list(tmp_path.iterdir()) == []


# -- (d) the connection drops in the middle of a body -------------------------------------------------


def _range_start(headers: dict[str, str]) -> int | None:
    for name, value in headers.items():
        if name.lower() == "range":
            return int(value.split("=", 1)[1].split("-", 1)[0])
    return None


def test_dropped_connection_resumes(proxy: FaultProxy, image: Content, repo_name: str, tmp_path: Path) -> None:
    layer = image.blobs[1]
    blob_path = f"/v2/{repo_name}/blobs/{layer.digest}"
    proxy.inject_drop(300_000, path_contains=blob_path)
    with ContainerRegistryClient(proxy.url, None) as client:
        assert b"".join(client.download_blob(repo_name, layer.digest)) == layer.data
        gets = proxy.requests("GET", blob_path)
        assert len(gets) >= 2 and gets[0].fault == "drop"
        resumed_from = _range_start(gets[1].headers)
        assert resumed_from is not None and 0 < resumed_from <= 300_000

        proxy.inject_drop(1_000_000, path_contains=blob_path)
        target = tmp_path / "layer.bin"
        assert client.download_blob_to_file(repo_name, layer.digest, target) == len(layer.data)
        assert target.read_bytes() == layer.data
    assert sum(1 for s in proxy.requests("GET", blob_path) if s.fault == "drop") == 2


async def test_async_dropped_connection_resumes(proxy: FaultProxy, image: Content, repo_name: str) -> None:
    layer = image.blobs[1]
    blob_path = f"/v2/{repo_name}/blobs/{layer.digest}"
    proxy.inject_drop(500_000, path_contains=blob_path)
    async with AsyncContainerRegistryClient(proxy.url, None) as client:
        stream = await client.download_blob(repo_name, layer.digest)
        assert b"".join([chunk async for chunk in stream]) == layer.data
    gets = proxy.requests("GET", blob_path)
    assert gets[0].fault == "drop"
    resumed_from = _range_start(gets[1].headers)
    assert resumed_from is not None and 0 < resumed_from <= 500_000


# -- a server that ignores Range ----------------------------------------------------------------------


def test_server_answering_200_to_ranges(proxy: FaultProxy, image: Content, repo_name: str, tmp_path: Path) -> None:
    layer = image.blobs[1]
    blob_path = f"/v2/{repo_name}/blobs/{layer.digest}"
    with ContainerRegistryClient(proxy.url, None) as client:
        proxy.inject_ignore_range(path_contains=blob_path)
        assert b"".join(client.download_blob(repo_name, layer.digest, offset=1000)) == layer.data[1000:]
        target = tmp_path / "layer.bin"
        assert client.download_blob_to_file(repo_name, layer.digest, target) == len(layer.data)
        assert target.read_bytes() == layer.data
        # A dropped connection, then a resume the server answers with the whole blob again.
        proxy.clear()
        proxy.inject_drop(300_000, path_contains=blob_path)
        proxy.inject_ignore_range(path_contains=blob_path)
        assert b"".join(client.download_blob(repo_name, layer.digest)) == layer.data
    assert all(s.status == 200 for s in proxy.requests("GET", blob_path))


# -- corrupted manifests, nothing listening -----------------------------------------------------------


def test_corrupted_manifest_raises(proxy: FaultProxy, image: Content, repo_name: str) -> None:
    proxy.inject_corruption(path_contains=f"/v2/{repo_name}/manifests/")
    with ContainerRegistryClient(proxy.url, None) as client:
        with pytest.raises(DigestValidationError):
            client.get_manifest(repo_name, image.digest)
        with pytest.raises(DigestValidationError):
            client.get_manifest(repo_name, "v1")  # checked against Docker-Content-Digest


def test_nothing_listening_is_a_service_request_error(repo_name: str) -> None:
    with ContainerRegistryClient(f"http://127.0.0.1:{free_port()}", None, retry_total=1) as client, pytest.raises(
        ServiceRequestError
    ):
        client.get_manifest(repo_name, "v1")
