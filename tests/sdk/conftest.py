"""Fixtures and helpers for the SDK suite: seeding registries over raw HTTP, backends, sync/async adapter.

Content is pushed with plain ``httpx`` (not the SDK under test), so a seeding step can never hide an SDK
bug. ``Backend`` describes one registry the scenario suite runs against; ``Api`` lets one ``async``
scenario drive either the sync or the async client.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dockyard.oci.digest import compute_digest
from dockyard.oci.mediatypes import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from tests.conftest import TEST_USER
from tests.support.credentials import AsyncCountingCredential, CountingCredential

# -- raw pushes ---------------------------------------------------------------------------------------


@dataclass
class Pushed:
    """What :func:`push_image` stored: the manifest bytes and digest, its config and layer blobs."""

    repository: str
    tag: str | None
    digest: str
    manifest: bytes
    media_type: str
    config_digest: str = ""
    config: bytes = b""
    layers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def manifest_json(self) -> dict[str, Any]:
        return json.loads(self.manifest)


def canonical(document: dict[str, Any]) -> bytes:
    """Stable JSON bytes for a manifest or config."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise AssertionError(f"seeding failed ({what}): {response.status_code} {response.text[:300]}")


def raw_client(base_url: str, auth: tuple[str, str] | None = None) -> httpx.Client:
    """An httpx client for seeding; Basic auth where the registry needs credentials."""
    return httpx.Client(base_url=base_url, auth=httpx.BasicAuth(*auth) if auth else None, timeout=120.0)


def push_blob(http: httpx.Client, repository: str, data: bytes) -> str:
    """Monolithic upload (POST, then PUT with the digest); returns the digest."""
    digest = compute_digest(data)
    started = http.post(f"/v2/{repository}/blobs/uploads/")
    _raise_for(started, f"start upload to {repository}")
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    finished = http.put(
        f"{location}{separator}digest={digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _raise_for(finished, f"finish upload of {digest}")
    return digest


def push_manifest(http: httpx.Client, repository: str, reference: str, body: bytes, media_type: str) -> str:
    """PUT a manifest under a tag or digest; returns its digest."""
    response = http.put(f"/v2/{repository}/manifests/{reference}", content=body, headers={"Content-Type": media_type})
    _raise_for(response, f"push manifest {repository}:{reference}")
    return compute_digest(body)


def push_image(
    http: httpx.Client,
    repository: str,
    tag: str | None,
    *,
    architecture: str = "amd64",
    os: str = "linux",
    created: str = "2024-01-01T00:00:00Z",
    layers: list[bytes] | None = None,
    subject: Pushed | None = None,
    artifact_type: str | None = None,
) -> Pushed:
    """Push a small image (config + layers + OCI manifest); ``tag=None`` pushes it by digest only."""
    layers = layers if layers is not None else [f"layer of {repository}:{tag}:{created}".encode()]
    config = canonical(
        {
            "architecture": architecture,
            "os": os,
            "created": created,
            "rootfs": {"type": "layers", "diff_ids": [compute_digest(layer) for layer in layers]},
            "config": {},
        }
    )
    config_digest = push_blob(http, repository, config)
    layer_entries = [(push_blob(http, repository, layer), layer) for layer in layers]
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": len(b)} for d, b in layer_entries],
    }
    if artifact_type:
        manifest["artifactType"] = artifact_type
    if subject is not None:
        manifest["subject"] = {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.manifest)}
    body = canonical(manifest)
    digest = push_manifest(http, repository, tag or compute_digest(body), body, OCI_MANIFEST)
    return Pushed(repository, tag, digest, body, OCI_MANIFEST, config_digest, config, layer_entries)


def push_index(http: httpx.Client, repository: str, tag: str | None, children: list[Pushed]) -> Pushed:
    """Push an OCI index over already pushed images (each child's platform from its config)."""
    entries = []
    for child in children:
        config = json.loads(child.config)
        entries.append(
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": len(child.manifest),
                "platform": {"architecture": config["architecture"], "os": config["os"]},
            }
        )
    body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = push_manifest(http, repository, tag or compute_digest(body), body, OCI_INDEX)
    return Pushed(repository, tag, digest, body, OCI_INDEX)


# -- backends -----------------------------------------------------------------------------------------


@dataclass
class Backend:
    """A registry under test and how to authenticate to it."""

    name: str
    url: str
    acr: bool
    auth: str  # "none", "basic" or "aad"
    basic: tuple[str, str] | None

    def http(self) -> httpx.Client:
        return raw_client(self.url, self.basic)

    def credential(self, is_async: bool) -> Any:
        """A fresh credential of this backend's kind for a sync or async client."""
        if self.auth == "basic":
            from dockyard.credentials import BasicCredential

            return BasicCredential(*TEST_USER)
        if self.auth == "aad":
            return AsyncCountingCredential() if is_async else CountingCredential()
        return None

    def client(self, is_async: bool, **kwargs: Any) -> Any:
        if is_async:
            from dockyard.aio import ContainerRegistryClient as AsyncClient

            return AsyncClient(self.url, self.credential(True), **kwargs)
        from dockyard import ContainerRegistryClient

        return ContainerRegistryClient(self.url, self.credential(False), **kwargs)


BACKENDS = ["dockyard", "dockyard-basic", "dockyard-aad", "distribution", "distribution-basic"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each registry of the matrix; the server fixtures start lazily so a missing peer only hits its rows."""
    name = request.param
    if name == "dockyard":
        return Backend(name, request.getfixturevalue("dockyard_server").url, True, "none", None)
    if name.startswith("dockyard-"):
        server = request.getfixturevalue("dockyard_auth_server")
        return Backend(name, server.url, True, name.split("-")[1], TEST_USER)
    if name == "distribution":
        return Backend(name, request.getfixturevalue("distribution_server").url, False, "none", None)
    server = request.getfixturevalue("distribution_auth_server")
    return Backend(name, server.url, False, "basic", TEST_USER)


# -- one scenario, two clients ------------------------------------------------------------------------


class Api:
    """Wrap a sync or async client so an ``async`` test can ``await api.method(...)`` on either."""

    def __init__(self, client: Any, is_async: bool) -> None:
        self.client = client
        self.is_async = is_async

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return call

    async def items(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Every item of a ``list_*`` pager."""
        paged = getattr(self.client, name)(*args, **kwargs)
        if self.is_async:
            return [item async for item in paged]
        return list(paged)

    async def pages(self, name: str, *args: Any, **kwargs: Any) -> list[list[Any]]:
        """The items of a ``list_*`` pager, page by page through ``by_page()``."""
        paged = getattr(self.client, name)(*args, **kwargs)
        out: list[list[Any]] = []
        if self.is_async:
            async for page in paged.by_page():
                out.append([item async for item in page] if hasattr(page, "__aiter__") else list(page))
        else:
            for page in paged.by_page():
                out.append(list(page))
        return out

    async def read_blob(self, repository: str, digest: str, **kwargs: Any) -> bytes:
        """Download a blob through ``download_blob`` and return its bytes."""
        stream = await self.download_blob(repository, digest, **kwargs)
        return b"".join([chunk async for chunk in _aiter(stream)])

    async def close_client(self) -> None:
        """Close the wrapped client (``close()`` or ``await close()``)."""
        result = self.client.close()
        if inspect.isawaitable(result):
            await result


async def _aiter(stream: Any) -> AsyncIterator[bytes]:
    if hasattr(stream, "__aiter__"):
        async for chunk in stream:
            yield chunk
    else:
        for chunk in stream:
            yield chunk


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Which client: ``dockyard.ContainerRegistryClient`` or ``dockyard.aio.ContainerRegistryClient``."""
    return request.param


@pytest.fixture
async def api(backend: Backend, flavour: str) -> AsyncIterator[Api]:
    """The client for this row of the matrix, closed at the end."""
    client = backend.client(flavour == "async")
    wrapper = Api(client, flavour == "async")
    try:
        yield wrapper
    finally:
        await wrapper.close_client()


@pytest.fixture
def seed(backend: Backend) -> Iterator[httpx.Client]:
    """A raw httpx client on the backend for pushing test content."""
    with backend.http() as http:
        yield http
