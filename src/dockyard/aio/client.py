"""``dockyard.aio.ContainerRegistryClient``: the asynchronous client.

Every method runs the same protocol generator as the sync client (:mod:`dockyard.protocol.operations`)
over :class:`AsyncDriver`; ``list_*`` are plain methods returning :class:`AsyncItemPaged`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol.api import Operation, RegistryApi
from ..protocol.config import ClientConfig
from .download import AsyncDownloadBlobStream
from .driver import AsyncDriver
from .paging import AsyncItemPaged


class ContainerRegistryClient(RegistryApi):
    """The async client for one container registry; same arguments as :class:`dockyard.ContainerRegistryClient`.

    ``credential`` may be an async Entra ID credential (its ``get_token`` is awaited).
    """

    _driver: AsyncDriver

    def _make_driver(self, config: ClientConfig) -> AsyncDriver:
        return AsyncDriver(config)

    @staticmethod
    def _method(operation: Operation) -> Callable[..., Any]:
        func = operation.func
        if operation.paged:

            def listing(self: ContainerRegistryClient, *args: Any, **kwargs: Any) -> AsyncItemPaged[Any]:
                return AsyncItemPaged(self._driver.run, func(self._ops, *args, **kwargs))

            return operation.wrap(listing, "AsyncItemPaged[{}]")

        async def method(self: ContainerRegistryClient, *args: Any, **kwargs: Any) -> Any:
            return await self._driver.run(func(self._ops, *args, **kwargs))

        return operation.wrap(method)

    async def download_blob(
        self, repository: str, digest: str, *, offset: int = 0, progress: Callable[[int], None] | None = None,
        size: int | None = None, **kwargs: Any,
    ) -> AsyncDownloadBlobStream:
        """An async stream of the blob's bytes, verified against ``digest`` at the end (when ``offset`` is 0).

        Never more than the blob's size is read: ``size`` (the descriptor's) when given, else the registry's.
        """
        state = self._ops.blob_read(repository, digest, offset=offset, progress=progress, size=size)
        return AsyncDownloadBlobStream(self._driver, state)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._driver.close()

    async def __aenter__(self) -> ContainerRegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
