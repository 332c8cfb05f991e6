"""The public operation table both clients expose, declared once.

Each entry is an :class:`Operation` naming a shared protocol operation; a client class turns it into a
method over its own driver in ``_method`` (the sync client runs it to completion, the async one returns a
coroutine, and listings become ``ItemPaged`` / ``AsyncItemPaged``). Static types of the resulting methods
live in the ``client.pyi`` stubs next to each client module.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ..credentials import DEFAULT_AUDIENCE
from .config import ClientConfig, build_config
from .operations import Operations
from .session import DEFAULT_MAX_PAGES


class Operation:
    """A client method backed by the shared operation ``func`` (a listing when ``paged``).

    In :class:`RegistryApi` it is a placeholder: every client subclass replaces it with a real method built
    by its ``_method`` hook, so ``help()``, IDEs and ``inspect`` see a plain function with the operation's
    name, docstring and signature.
    """

    def __init__(self, func: Callable[..., Any], *, paged: bool = False) -> None:
        self.func = func
        self.paged = paged
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def wrap(self, method: Callable[..., Any], returns: str = "{}") -> Callable[..., Any]:
        """Give ``method`` (which takes the client as ``self``) the name, docstring and signature of the
        shared operation.

        ``returns`` formats the client's return type from the operation's result type (``Gen[X]`` or
        ``Pager[X]`` -> ``X``), e.g. ``"ItemPaged[{}]"``.
        """
        functools.update_wrapper(method, self.func)
        del method.__wrapped__  # type: ignore[attr-defined]  # the client method is not a generator function
        signature = inspect.signature(self.func)
        annotation = str(signature.return_annotation)
        inner = annotation[annotation.find("[") + 1 : annotation.rfind("]")] if "[" in annotation else annotation
        method.__signature__ = signature.replace(return_annotation=returns.format(inner))  # type: ignore[attr-defined]
        method.__name__ = self.name
        return method

    def __repr__(self) -> str:
        return f"<operation {self.name}>"


class RegistryApi:
    """The operations of ``ContainerRegistryClient`` (azure-containerregistry 1.2 plus dockyard's additions)."""

    has_acr_api = Operation(Operations.has_acr_api)
    list_repository_names = Operation(Operations.list_repository_names, paged=True)
    get_repository_properties = Operation(Operations.get_repository_properties)
    update_repository_properties = Operation(Operations.update_repository_properties)
    delete_repository = Operation(Operations.delete_repository)
    list_tag_properties = Operation(Operations.list_tag_properties, paged=True)
    get_tag_properties = Operation(Operations.get_tag_properties)
    update_tag_properties = Operation(Operations.update_tag_properties)
    delete_tag = Operation(Operations.delete_tag)
    list_manifest_properties = Operation(Operations.list_manifest_properties, paged=True)
    get_manifest_properties = Operation(Operations.get_manifest_properties)
    update_manifest_properties = Operation(Operations.update_manifest_properties)
    delete_manifest = Operation(Operations.delete_manifest)
    get_manifest = Operation(Operations.get_manifest)
    download_manifest = Operation(Operations.get_manifest)
    set_manifest = Operation(Operations.set_manifest)
    upload_manifest = Operation(Operations.set_manifest)
    get_manifest_descriptor = Operation(Operations.get_manifest_descriptor)
    list_referrers = Operation(Operations.list_referrers)
    upload_blob = Operation(Operations.upload_blob)
    delete_blob = Operation(Operations.delete_blob)
    abort_uploads = Operation(Operations.abort_uploads)
    blob_exists = Operation(Operations.blob_exists)
    mount_blob = Operation(Operations.mount_blob)
    download_blob_to_file = Operation(Operations.download_blob_to_file)

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
        max_pages: int = DEFAULT_MAX_PAGES,
        **kwargs: Any,
    ) -> None:
        """A client for the registry at ``endpoint``.

        :param endpoint: the registry URL, or ``host[:port]``: then ``http://`` for loopback hosts
            (``localhost``, ``127.0.0.0/8``, ``::1``) and ``https://`` for every other host.
        :param credential: ``None`` (anonymous), an object with ``get_token`` (Entra ID, sync or async),
            :class:`dockyard.credentials.BasicCredential` or :class:`dockyard.credentials.DockerConfigCredential`.
        :keyword audience: Entra ID audience (scope ``<audience>/.default``).
        :keyword api_version: ``2021-07-01`` (default) or ``2019-08-15-preview``.
        :keyword max_concurrency: parallel range requests of ``download_blob_to_file``.
        :keyword timeout: seconds to wait for the network.
        :keyword retry_total: retries of transient failures (408/429/5xx, dropped connections).
        :keyword http2: use HTTP/2 where the registry offers it.
        :keyword allow_insecure_credentials: allow sending credentials over plain HTTP to other hosts.
        :keyword transport: an ``httpx`` transport (for tests; it then decides proxies and TLS itself).
        :keyword connection_verify: ``True`` (default: the CA bundle of ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``
            or ``SSL_CERT_FILE``, else the system's), ``False`` (no verification), or a CA bundle path.
        :keyword proxies: ``{"http": URL, "https": URL}`` as in azure-core; ``HTTP_PROXY``/``HTTPS_PROXY``/
            ``NO_PROXY`` apply too (unless a custom ``transport`` is given).
        :keyword logging_enable: log each request's and response's headers (secrets redacted) at ``DEBUG`` on
            ``azure.core.pipeline.policies.http_logging_policy``.
        :keyword max_pages: the most pages one listing follows (default 10,000); a listing whose ``Link``
            header comes back to a page already read, or goes on past this, raises ``PagingError``.
        """
        self._config = build_config(
            endpoint, credential, audience=audience, api_version=api_version, max_concurrency=max_concurrency,
            timeout=timeout, retry_total=retry_total, http2=http2,
            allow_insecure_credentials=allow_insecure_credentials, transport=transport, max_pages=max_pages,
            options=kwargs,
        )
        self._ops = self._config.operations
        self._driver = self._make_driver(self._config)

    def _make_driver(self, config: ClientConfig) -> Any:
        """The driver that moves this client's bytes (implemented by the sync and the async client)."""
        raise NotImplementedError

    @staticmethod
    def _method(operation: Operation) -> Callable[..., Any]:
        """The client method (taking ``self``) for ``operation`` (implemented by the sync and the async client)."""
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Turn each :class:`Operation` of the table into a real method of the client class ``cls``."""
        super().__init_subclass__(**kwargs)
        for name, operation in vars(RegistryApi).items():
            if isinstance(operation, Operation) and name not in vars(cls):
                method = cls._method(operation)
                method.__qualname__ = f"{cls.__qualname__}.{name}"
                setattr(cls, name, method)

    @property
    def endpoint(self) -> str:
        """The registry URL this client talks to."""
        return self._ops.session.endpoint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"
