"""Edges of auth and transport against real servers on loopback.

- A blob ``GET`` answered with a redirect to another host is followed, ``Authorization`` stays with the
  registry, and the bytes are still verified against the digest.
- Expired Entra ID tokens (the client's clock moved past the refresh and access tokens' expiry) are
  re-exchanged transparently.
- Pushing into a write-locked repository or over a write-locked tag raises ``OperationNotAllowedError``
  and changes nothing.

Each scenario runs through the sync and the async client.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from dockyard import (
    ContainerRegistryClient,
    DigestValidationError,
    HttpResponseError,
    OperationNotAllowedError,
    ResourceNotFoundError,
)
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from dockyard.credentials import BasicCredential
from tests.conftest import TEST_USER
from tests.sdk.conftest import Api, Seeder
from tests.support.credentials import AsyncCountingCredential, CountingCredential
from tests.support.images import Content
from tests.support.proxy import FaultProxy
from tests.support.servers import DockyardServer

OTHER_HOST = "127.0.0.2"  # another loopback address: another origin, so credentials must not follow


@pytest.fixture(params=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return request.param == "async"


@asynccontextmanager
async def open_api(is_async: bool, url: str, credential: Any = None, **kwargs: Any) -> AsyncIterator[Api]:
    """A sync or async client on ``url``, wrapped so the test awaits either; closed on exit."""
    if is_async:
        async with AsyncContainerRegistryClient(url, credential, **kwargs) as client:
            yield Api(client, True)
    else:
        with ContainerRegistryClient(url, credential, **kwargs) as client:
            yield Api(client, False)


# -- (a) a blob GET redirected to another host --------------------------------------------------------


class BlobHost:
    """A tiny HTTP server on another loopback address that serves one byte string at any path and records
    the headers of every request it gets."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                owner.requests.append({k.lower(): v for k, v in self.headers.items()})
                body, status = owner.data, 200
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes="):
                    start, _, end = ranged[6:].partition("-")
                    last = int(end) if end else len(owner.data) - 1
                    body, status = owner.data[int(start) : last + 1], 206
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{last}/{len(owner.data)}")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((OTHER_HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{OTHER_HOST}:{self._server.server_address[1]}"

    def __enter__(self) -> BlobHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


@pytest.fixture
def auth_proxy(dockyard_auth_server: DockyardServer) -> Iterator[FaultProxy]:
    with FaultProxy(dockyard_auth_server.url) as running:
        yield running


@pytest.fixture
def auth_image(dockyard_auth_server: DockyardServer, repo_name: str) -> Content:
    with httpx.Client(timeout=60.0, auth=TEST_USER) as http:
        return Seeder(dockyard_auth_server.url, http).image(repo_name, "v1", layer_size=300 * 1024)


def _redirect_blob(proxy: FaultProxy, repository: str, digest: str, host: BlobHost) -> str:
    blob_path = f"/v2/{repository}/blobs/{digest}"
    proxy.inject_status(307, headers={"Location": f"{host.url}/storage/{digest}"}, method="GET",
                        path_contains=blob_path, times=None)
    return blob_path


async def test_redirected_blob_get_keeps_authorization_home(
    is_async: bool, auth_proxy: FaultProxy, auth_image: Content, repo_name: str, tmp_path: Any
) -> None:
    layer = auth_image.blobs[1]
    with BlobHost(layer.data) as host:
        blob_path = _redirect_blob(auth_proxy, repo_name, layer.digest, host)
        async with open_api(is_async, auth_proxy.url, BasicCredential(*TEST_USER)) as api:
            assert await api.blob_exists(repo_name, layer.digest)  # learns the pull token, sent up front from now on
            assert await api.read_blob(repo_name, layer.digest) == layer.data
            target = tmp_path / "layer.bin"
            assert await api.download_blob_to_file(repo_name, layer.digest, target) == len(layer.data)
            assert target.read_bytes() == layer.data
    asked = auth_proxy.requests("GET", blob_path)
    assert len(asked) >= 2 and all(s.status == 307 for s in asked)
    sent = [{k.lower(): v for k, v in s.headers.items()}.get("authorization", "") for s in asked]
    assert all(value.startswith("Bearer ") for value in sent), sent  # sent to the registry ...
    assert len(host.requests) >= 2
    assert [h for h in host.requests if "authorization" in h] == []  # ... and never to the other host


async def test_redirected_blob_is_still_verified(
    is_async: bool, auth_proxy: FaultProxy, auth_image: Content, repo_name: str, tmp_path: Any
) -> None:
    layer = auth_image.blobs[1]
    tampered = bytes([layer.data[0] ^ 0xFF]) + layer.data[1:]
    with BlobHost(tampered) as host:
        _redirect_blob(auth_proxy, repo_name, layer.digest, host)
        async with open_api(is_async, auth_proxy.url, BasicCredential(*TEST_USER)) as api:
            with pytest.raises(DigestValidationError):
                await api.read_blob(repo_name, layer.digest)
            with pytest.raises(DigestValidationError):
                await api.download_blob_to_file(repo_name, layer.digest, tmp_path / "layer.bin")
    assert host.requests
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial or temporary file left


# -- (b) Entra ID tokens that expired are exchanged again ---------------------------------------------

DAY = 24 * 3600


async def test_expired_entra_tokens_are_exchanged_again(
    is_async: bool, auth_proxy: FaultProxy, auth_image: Content, repo_name: str
) -> None:
    credential = AsyncCountingCredential() if is_async else CountingCredential()
    offset = [0.0]
    async with open_api(is_async, auth_proxy.url, credential) as api:
        api.client._ops.session.clock = lambda: time.time() + offset[0]
        assert (await api.get_tag_properties(repo_name, "v1")).digest == auth_image.digest
        assert credential.count == 1
        assert len(auth_proxy.requests("POST", "/oauth2/exchange")) == 1
        assert (await api.get_manifest(repo_name, "v1")).digest == auth_image.digest
        assert credential.count == 1  # still cached

        # Two hours on, the access tokens (1 h) have expired: new ones from the cached refresh token.
        offset[0] = 2 * 3600
        tokens_before = len(auth_proxy.requests("POST", "/oauth2/token"))
        assert (await api.get_manifest(repo_name, "v1")).digest == auth_image.digest
        assert len(auth_proxy.requests("POST", "/oauth2/token")) == tokens_before + 1
        assert credential.count == 1
        assert len(auth_proxy.requests("POST", "/oauth2/exchange")) == 1

        # A day and an hour on, the registry's refresh token (24 h) has expired too: Entra ID is asked again.
        # (Only the client's clock moves, so what is fetched now looks expired to it as well; one call suffices.)
        offset[0] = DAY + 3600
        tokens_before = len(auth_proxy.requests("POST", "/oauth2/token"))
        assert (await api.get_tag_properties(repo_name, "v1")).digest == auth_image.digest
        assert credential.count == 2
        assert len(auth_proxy.requests("POST", "/oauth2/exchange")) == 2
        assert len(auth_proxy.requests("POST", "/oauth2/token")) == tokens_before + 1
    assert all(s.status < 400 for s in auth_proxy.requests(path_contains="/oauth2/"))


# -- (c) write locks: pushing changes nothing ---------------------------------------------------------


def _manifest_for(content: Content) -> dict[str, Any]:
    """Another manifest over the same blobs (an annotation makes it new)."""
    manifest = content.json
    manifest["annotations"] = {"org.example.nonce": os.urandom(8).hex()}
    return manifest


@pytest.fixture
def open_image(dockyard_server: DockyardServer, repo_name: str) -> Content:
    with httpx.Client(timeout=60.0) as http:
        return Seeder(dockyard_server.url, http).image(repo_name, "v1")


async def _state(api: Api, repository: str) -> tuple[list[Any], list[Any]]:
    tags = sorted((t.name, t.digest) for t in await api.items("list_tag_properties", repository))
    manifests = sorted(str(m.digest) for m in await api.items("list_manifest_properties", repository))
    return tags, manifests


async def test_push_over_write_locked_tag_is_refused(
    is_async: bool, dockyard_server: DockyardServer, open_image: Content, repo_name: str
) -> None:
    async with open_api(is_async, dockyard_server.url) as api:
        await api.update_tag_properties(repo_name, "v1", can_write=False)
        before = await _state(api, repo_name)
        with pytest.raises(OperationNotAllowedError) as caught:
            await api.set_manifest(repo_name, _manifest_for(open_image), tag="v1")
        assert isinstance(caught.value, HttpResponseError) and caught.value.status_code == 405
        assert (await api.get_manifest(repo_name, "v1")).digest == open_image.digest
        assert await _state(api, repo_name) == before
        # Other tags in the repository are still writable.
        pushed = await api.set_manifest(repo_name, _manifest_for(open_image), tag="v2")
        assert (await api.get_tag_properties(repo_name, "v2")).digest == pushed


async def test_push_into_write_locked_repository_is_refused(
    is_async: bool, dockyard_server: DockyardServer, open_image: Content, repo_name: str
) -> None:
    data = os.urandom(1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with open_api(is_async, dockyard_server.url) as api:
        locked = await api.update_repository_properties(repo_name, can_write=False)
        assert locked.can_write is False
        before = await _state(api, repo_name)
        with pytest.raises(OperationNotAllowedError) as caught:
            await api.upload_blob(repo_name, data)
        assert caught.value.status_code == 405
        assert not await api.blob_exists(repo_name, digest)
        for tag in ("v1", "v3"):
            with pytest.raises(OperationNotAllowedError):
                await api.set_manifest(repo_name, _manifest_for(open_image), tag=tag)
        assert await _state(api, repo_name) == before
        with pytest.raises(ResourceNotFoundError):
            await api.get_tag_properties(repo_name, "v3")
        await api.update_repository_properties(repo_name, can_write=True)
        assert (await api.upload_blob(repo_name, data)) == (digest, len(data))
