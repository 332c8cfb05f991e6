"""``dockyard.ContainerRegistryClient``: the synchronous client (azure-containerregistry 1.2 API and more).

Every method runs a protocol generator from :mod:`dockyard.protocol.operations` (shared with the async
client) over :class:`SyncDriver`; this module only decides how bytes move.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..credentials import DEFAULT_AUDIENCE
from ..protocol.config import build_config
from ..protocol.messages import Gen
from ..protocol.operations import Operations
from ..protocol.paging import Pager
from .download import DownloadBlobStream, download_to_file
from .driver import SyncDriver
from .paging import ItemPaged

P = ParamSpec("P")
T = TypeVar("T")


def _op(func: Callable[Concatenate[Operations, P], Gen[T]]) -> Callable[Concatenate[ContainerRegistryClient, P], T]:
    """A client method that runs the shared operation ``func`` to completion."""

    @functools.wraps(func)
    def method(self: ContainerRegistryClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._driver.run(func(self._ops, *args, **kwargs))

    return method


def _paged(
    func: Callable[Concatenate[Operations, P], Pager[T]],
) -> Callable[Concatenate[ContainerRegistryClient, P], ItemPaged[T]]:
    """A client method returning an :class:`ItemPaged` over the shared listing ``func``."""

    @functools.wraps(func)
    def method(self: ContainerRegistryClient, *args: P.args, **kwargs: P.kwargs) -> ItemPaged[T]:
        return ItemPaged(self._driver.run, func(self._ops, *args, **kwargs))

    return method


class ContainerRegistryClient:
    """A client for one container registry: ACR (``/acr/v1``) or any OCI distribution registry.

    :param endpoint: the registry URL (``https://`` is added when no scheme is given; ``http://`` is
        fine for this machine).
    :param credential: ``None`` (anonymous), an object with ``get_token`` (Entra ID),
        :class:`dockyard.credentials.BasicCredential` or :class:`dockyard.credentials.DockerConfigCredential`.
    :keyword audience: Entra ID audience (scope ``<audience>/.default``).
    :keyword api_version: ``2021-07-01`` (default) or ``2019-08-15-preview``.
    :keyword max_concurrency: parallel range requests of ``download_blob_to_file``.
    :keyword timeout: seconds to wait for the network.
    :keyword retry_total: retries of transient failures (408/429/5xx, dropped connections).
    :keyword http2: use HTTP/2 where the registry offers it.
    :keyword allow_insecure_credentials: allow sending credentials over plain HTTP to other hosts.
    :keyword transport: an ``httpx`` transport (for proxies and tests).
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
        config = build_config(
            endpoint, credential, audience=audience, api_version=api_version, max_concurrency=max_concurrency,
            timeout=timeout, retry_total=retry_total, http2=http2,
            allow_insecure_credentials=allow_insecure_credentials, transport=transport, **kwargs,
        )
        self._config = config
        self._ops = config.operations
        self._driver = SyncDriver(config)

    @property
    def endpoint(self) -> str:
        """The registry URL this client talks to."""
        return self._ops.session.endpoint

    # Metadata, manifests and blobs: one shared implementation each (see dockyard.protocol.operations).
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

    def download_blob(
        self, repository: str, digest: str, *, offset: int = 0, progress: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> DownloadBlobStream:
        """A stream of the blob's bytes, verified against ``digest`` at the end (when ``offset`` is 0)."""
        return DownloadBlobStream(self._driver, self._ops.blob_read(repository, digest, offset=offset,
                                                                    progress=progress))

    def download_blob_to_file(
        self, repository: str, digest: str, path: str | os.PathLike[str], *,
        progress: Callable[[int], None] | None = None, **kwargs: Any,
    ) -> int:
        """Download a blob to ``path`` (never a partial file); big blobs as parallel ranges. Returns the size."""
        return download_to_file(self._driver, self._ops.session, repository, digest, path,
                                max_concurrency=self._config.max_concurrency, progress=progress)

    def close(self) -> None:
        """Close the connection pool."""
        self._driver.close()

    def __enter__(self) -> ContainerRegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ContainerRegistryClient({self.endpoint!r})"
