"""dockyard: a Python SDK, CLI and local server for container registries.

``from dockyard import ContainerRegistryClient`` is a drop-in for
``from azure.containerregistry import ContainerRegistryClient``, and works on any OCI registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _lazy_httpx_cli

if TYPE_CHECKING:
    from ._sync.client import ContainerRegistryClient
    from ._sync.download import DownloadBlobStream
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

__version__ = "0.1.0"

_lazy_httpx_cli.install()

# Everything is imported on first use: the client pulls in httpx, and `import dockyard` (which the console
# script's `--version` and every `dockyard.*` import pay) stays light.
_LAZY = {
    "ContainerRegistryClient": "dockyard._sync.client",
    "DownloadBlobStream": "dockyard._sync.download",
    **dict.fromkeys(
        ["ClientAuthenticationError", "DigestValidationError", "HttpResponseError", "OperationNotAllowedError",
         "ResourceExistsError", "ResourceNotFoundError", "ResourceNotModifiedError", "ServiceRequestError",
         "UnsupportedOperationError"],
        "dockyard.errors",
    ),
    **dict.fromkeys(
        ["ArtifactArchitecture", "ArtifactManifestOrder", "ArtifactManifestProperties", "ArtifactOperatingSystem",
         "ArtifactTagOrder", "ArtifactTagProperties", "DownloadManifestResult", "GetManifestResult",
         "RepositoryProperties"],
        "dockyard.models",
    ),
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
