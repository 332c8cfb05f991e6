"""dockyard: a Python SDK, CLI and local server for container registries.

``from dockyard import ContainerRegistryClient`` is a drop-in for
``from azure.containerregistry import ContainerRegistryClient``, and works on any OCI registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _lazy_httpx_cli
from .errors import (
    ClientAuthenticationError,
    DigestValidationError,
    HttpResponseError,
    OperationNotAllowedError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    ServiceRequestError,
    UnsupportedOperationError,
)
from .models import (
    ArtifactArchitecture,
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactOperatingSystem,
    ArtifactTagOrder,
    ArtifactTagProperties,
    DownloadManifestResult,
    GetManifestResult,
    RepositoryProperties,
)

if TYPE_CHECKING:
    from ._sync.client import ContainerRegistryClient
    from ._sync.download import DownloadBlobStream

__version__ = "0.1.0"

_lazy_httpx_cli.install()

# The client pulls in httpx; import it on first use so that `dockyard.oci` and the server stay light.
_LAZY = {
    "ContainerRegistryClient": "dockyard._sync.client",
    "DownloadBlobStream": "dockyard._sync.download",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dockyard' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ArtifactArchitecture",
    "ArtifactManifestOrder",
    "ArtifactManifestProperties",
    "ArtifactOperatingSystem",
    "ArtifactTagOrder",
    "ArtifactTagProperties",
    "ClientAuthenticationError",
    "ContainerRegistryClient",
    "DigestValidationError",
    "DownloadBlobStream",
    "DownloadManifestResult",
    "GetManifestResult",
    "HttpResponseError",
    "OperationNotAllowedError",
    "RepositoryProperties",
    "ResourceExistsError",
    "ResourceNotFoundError",
    "ResourceNotModifiedError",
    "ServiceRequestError",
    "UnsupportedOperationError",
    "__version__",
]
