"""The asynchronous client: ``from dockyard.aio import ContainerRegistryClient``."""

from .client import ContainerRegistryClient
from .download import AsyncDownloadBlobStream
from .paging import AsyncItemPaged

__all__ = ["AsyncDownloadBlobStream", "AsyncItemPaged", "ContainerRegistryClient"]
