"""``dockyard.ContainerRegistryClient``: the synchronous client (azure-containerregistry 1.2 API and more).

Every method runs a protocol generator from :mod:`dockyard.protocol.operations` (shared with the async
client) over :class:`SyncDriver`; this module only decides how bytes move.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol.api import Operation, RegistryApi
from ..protocol.config import ClientConfig
from .download import DownloadBlobStream
from .driver import SyncDriver
from .paging import ItemPaged


class ContainerRegistryClient(RegistryApi):
    """A client for one container registry: ACR (``/acr/v1``) or any OCI distribution registry.

    The constructor's arguments are described on :class:`dockyard.protocol.api.RegistryApi`.
    """

    _driver: SyncDriver

    def _make_driver(self, config: ClientConfig) -> SyncDriver:
        return SyncDriver(config)

    @staticmethod
    def _method(operation: Operation) -> Callable[..., Any]:
        func = operation.func
        if operation.paged:

            def listing(self: ContainerRegistryClient, *args: Any, **kwargs: Any) -> ItemPaged[Any]:
                return ItemPaged(self._driver.run, func(self._ops, *args, **kwargs))

            return operation.wrap(listing, "ItemPaged[{}]")

        def method(self: ContainerRegistryClient, *args: Any, **kwargs: Any) -> Any:
            return self._driver.run(func(self._ops, *args, **kwargs))

        return operation.wrap(method)

    def download_blob(
        self, repository: str, digest: str, *, offset: int = 0, progress: Callable[[int], None] | None = None,
        size: int | None = None, **kwargs: Any,
    ) -> DownloadBlobStream:
        """A stream of the blob's bytes, verified against ``digest`` at the end (when ``offset`` is 0).

        Never more than the blob's size is read: ``size`` (the descriptor's) when given, else the registry's.
        """
        return DownloadBlobStream(self._driver, self._ops.blob_read(repository, digest, offset=offset,
                                                                    progress=progress, size=size))

    def close(self) -> None:
        """Close the connection pool."""
        self._driver.close()

    def __enter__(self) -> ContainerRegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
