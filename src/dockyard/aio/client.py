"""``dockyard.aio.ContainerRegistryClient``: the asynchronous client.

Every method runs the same protocol generator as the sync client (:mod:`dockyard.protocol.operations`)
over :class:`AsyncDriver`; ``list_*`` are plain methods returning :class:`AsyncItemPaged`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..credentials import DEFAULT_AUDIENCE
from ..protocol.config import build_config
from ..protocol.messages import Gen
from ..protocol.operations import Operations
from ..protocol.paging import Pager
from .download import AsyncDownloadBlobStream, download_to_file
from .driver import AsyncDriver
from .paging import AsyncItemPaged

P = ParamSpec("P")
T = TypeVar("T")


def _op(
    func: Callable[Concatenate[Operations, P], Gen[T]],
) -> Callable[Concatenate[ContainerRegistryClient, P], Coroutine[Any, Any, T]]:
    """A coroutine method that runs the shared operation ``func`` to completion."""

    @functools.wraps(func)
    async def method(self: ContainerRegistryClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._driver.run(func(self._ops, *args, **kwargs))

    return method


def _paged(
    func: Callable[Concatenate[Operations, P], Pager[T]],
) -> Callable[Concatenate[ContainerRegistryClient, P], AsyncItemPaged[T]]:
    """A plain method returning an :class:`AsyncItemPaged` over the shared listing ``func``."""

    @functools.wraps(func)
    def method(self: ContainerRegistryClient, *args: P.args, **kwargs: P.kwargs) -> AsyncItemPaged[T]:
        return AsyncItemPaged(self._driver.run, func(self._ops, *args, **kwargs))

    return method


class ContainerRegistryClient:
    """The async client for one container registry; same arguments as :class:`dockyard.ContainerRegistryClient`.

    ``credential`` may be an async Entra ID credential (its ``get_token`` is awaited).
    """

    def __init__(
        self,
        endpoint: str,
        credential: Any = None,
        *,
        audience: str = DEFAULT_AUDIENCE,
        api_version: str | None = None,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        retry_total: int = 5,
        http2: bool = False,
        allow_insecure_credentials: bool = False,
        transport: Any = None,
        **kwargs: Any,
    ) -> None:
        self._config = build_config(
            endpoint, credential, audience=audience, api_version=api_version, max_concurrency=max_concurrency,
            timeout=timeout, retry_total=retry_total, http2=http2,
            allow_insecure_credentials=allow_insecure_credentials, transport=transport, **kwargs,
        )
        self._ops = self._config.operations
        self._driver = AsyncDriver(self._config)

    @property
    def endpoint(self) -> str:
        """The registry URL this client talks to."""
        return self._ops.session.endpoint

    has_acr_api = _op(Operations.has_acr_api)
    list_repository_names = _paged(Operations.list_repository_names)
    get_repository_properties = _op(Operations.get_repository_properties)
    update_repository_properties = _op(Operations.update_repository_properties)
    delete_repository = _op(Operations.delete_repository)
    list_tag_properties = _paged(Operations.list_tag_properties)
    get_tag_properties = _op(Operations.get_tag_properties)
    update_tag_properties = _op(Operations.update_tag_properties)
    delete_tag = _op(Operations.delete_tag)
    list_manifest_properties = _paged(Operations.list_manifest_properties)
    get_manifest_properties = _op(Operations.get_manifest_properties)
    update_manifest_properties = _op(Operations.update_manifest_properties)
    delete_manifest = _op(Operations.delete_manifest)
    get_manifest = _op(Operations.get_manifest)
    download_manifest = _op(Operations.get_manifest)
    set_manifest = _op(Operations.set_manifest)
    upload_manifest = _op(Operations.set_manifest)
    get_manifest_descriptor = _op(Operations.get_manifest_descriptor)
    list_referrers = _op(Operations.list_referrers)
    upload_blob = _op(Operations.upload_blob)
    delete_blob = _op(Operations.delete_blob)
    blob_exists = _op(Operations.blob_exists)
    mount_blob = _op(Operations.mount_blob)

    async def download_blob(
        self, repository: str, digest: str, *, offset: int = 0, progress: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> AsyncDownloadBlobStream:
        """An async stream of the blob's bytes, verified against ``digest`` at the end (when ``offset`` is 0)."""
        state = self._ops.blob_read(repository, digest, offset=offset, progress=progress)
        return AsyncDownloadBlobStream(self._driver, state)

    async def download_blob_to_file(
        self, repository: str, digest: str, path: str | os.PathLike[str], *,
        progress: Callable[[int], None] | None = None, **kwargs: Any,
    ) -> int:
        """Download a blob to ``path`` (never a partial file); big blobs as parallel ranges. Returns the size."""
        return await download_to_file(self._driver, self._ops.session, repository, digest, path,
                                      max_concurrency=self._config.max_concurrency, progress=progress)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._driver.close()

    async def __aenter__(self) -> ContainerRegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"ContainerRegistryClient({self.endpoint!r})"
