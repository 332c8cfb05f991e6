"""Fixtures and helpers for the SDK suite: seeding registries over raw HTTP, backends, sync/async adapter.

Content is pushed with plain ``httpx`` (not the SDK under test), so a seeding step can never hide an SDK
bug. ``Backend`` describes one registry the scenario suite runs against; ``Api`` lets one ``async``
scenario drive either the sync or the async client.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_USER
from tests.support.credentials import AsyncCountingCredential, CountingCredential
from tests.support.images import Content, make_image, make_index, push, put_manifest

# -- seeding over raw HTTP ----------------------------------------------------------------------------


class Seeder:
    """Pushes test content (built by :mod:`tests.support.images`) to one registry over raw httpx."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = url
        self.http = http

    def image(self, repository: str, tag: str | None, **kwargs: Any) -> Content:
        """Push a fresh one-layer image (random bytes, so a new digest every time); ``kwargs`` go to make_image."""
        kwargs.setdefault("layers", 1)
        kwargs.setdefault("layer_size", 256)
        content = make_image(**kwargs)
        push(content, self.url, repository, tag, client=self.http)
        return content

    def index(self, repository: str, tag: str | None, children: list[Content]) -> Content:
        """Push an OCI index over already pushed ``children`` (only the index itself is sent, so the children's
        last-updated times stay as they were)."""
        content = make_index(children)
        put_manifest(self.http, self.url, repository, content, tag)
        return content

    def tag(self, repository: str, tag: str, content: Content) -> None:
        """Point another tag at pushed content."""
        put_manifest(self.http, self.url, repository, content, tag)


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
        """A raw httpx client for seeding (Basic auth where the registry needs credentials)."""
        return httpx.Client(auth=httpx.BasicAuth(*self.basic) if self.basic else None, timeout=120.0)

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
def seed(backend: Backend) -> Iterator[Seeder]:
    """Pushes test content to the backend over raw HTTP."""
    with backend.http() as http:
        yield Seeder(backend.url, http)
