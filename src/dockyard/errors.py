"""The exception hierarchy of dockyard.

Names follow azure-core (``ResourceNotFoundError``, ``HttpResponseError`` ...) so code written for
``azure-containerregistry`` keeps its ``except`` clauses. When azure-core is installed, each class here
also inherits from its azure-core namesake, so ``except azure.core.exceptions.ResourceNotFoundError``
catches dockyard's errors too.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

#: The azure-core module whose classes become bases of dockyard's namesakes.
_AZURE_EXCEPTIONS = "azure.core.exceptions"

class DockyardError(Exception):
    """Base class of every error dockyard raises on purpose."""


class ServiceRequestError(DockyardError):
    """The request could not be sent: connection refused or dropped, TLS refused, a timeout.

    ``url`` is the origin (``scheme://host:port``) that could not be reached, when known; ``connect_failed`` is
    True when no connection could be made at all (refused, unknown host): retrying at once would not help.
    """

    def __init__(
        self, message: str, *, error: BaseException | None = None, url: str | None = None,
        connect_failed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.inner_exception = error
        self.url = url
        self.connect_failed = connect_failed


class InsecureCredentialsError(ServiceRequestError):
    """Credentials were about to go over plain HTTP to a host other than this machine (``url``), which the
    client refuses unless ``allow_insecure_credentials=True``."""


class TransferCancelledError(DockyardError):
    """An upload stopped because its client's uploads were aborted (``abort_uploads``)."""


class HttpResponseError(DockyardError):
    """The registry answered with an error status.

    ``status_code`` is the HTTP status, ``error_code`` the first OCI/ACR error code of the body
    (``MANIFEST_UNKNOWN``, ``DENIED`` ...), ``errors`` every ``{"code", "message", "detail"}`` entry,
    ``subject`` what was asked for (``tag demo/hello:v1``, ``repository demo/hello``) when known.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        reason: str | None = None,
        error_code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        response: Any = None,
        subject: str | None = None,
    ) -> None:
        text = message or f"Operation returned an invalid status {status_code} {reason or ''}".strip()
        super().__init__(text)
        self.message = text
        self.status_code = status_code
        self.reason = reason
        self.error_code = error_code
        self.errors = list(errors or [])
        self.response = response
        self.subject = subject
        self.model = None
        self.error = None

    def __str__(self) -> str:
        return self.message


class ClientAuthenticationError(HttpResponseError):
    """401/403: missing, wrong or insufficient credentials."""


class ResourceNotFoundError(HttpResponseError):
    """404: the repository, tag, manifest or blob does not exist."""


class ResourceExistsError(HttpResponseError):
    """409: the resource exists or conflicts with the request."""


class ResourceNotModifiedError(HttpResponseError):
    """304."""


class OperationNotAllowedError(HttpResponseError):
    """405: the registry refuses the operation, e.g. deleting a locked (``can_delete=False``) artifact."""


class UnsupportedOperationError(HttpResponseError):
    """The registry lacks a capability the call needs (e.g. lock updates on a registry without ``/acr/v1``)."""


class ResponseTooLargeError(HttpResponseError, ValueError):
    """The registry sent more than the client reads: a manifest over 4 MiB, a blob longer than its size (or
    of a size the registry would not tell), a response body over the client's limit. Reading stopped at the
    limit; nothing was kept."""


class PagingError(HttpResponseError):
    """A listing the registry would not let end: its ``Link`` header led back to a page already read, or it
    went on past the client's page limit (``max_pages``)."""


class DigestValidationError(DockyardError, ValueError):
    """Content whose digest does not match the one expected (the name azure-containerregistry uses)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


#: dockyard's classes that take their azure-core namesake as a second base, parents before children.
_AZURE_TWINS: tuple[type[Exception], ...] = (
    ServiceRequestError,
    HttpResponseError,
    ClientAuthenticationError,
    ResourceNotFoundError,
    ResourceExistsError,
    ResourceNotModifiedError,
)


def _adopt_azure_bases(module: ModuleType) -> None:
    """Give each class of :data:`_AZURE_TWINS` its azure-core namesake from ``module`` as a second base."""
    for cls in _AZURE_TWINS:
        twin = getattr(module, cls.__name__, None)
        if isinstance(twin, type) and twin not in cls.__mro__:
            cls.__bases__ = (*cls.__bases__, twin)


class _AdoptingLoader:
    """azure-core's own loader for its exceptions module, adopting the bases right after the module ran (an
    import-system loader by duck typing: ``importlib.abc`` costs more to import than all of this module)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _adopt_azure_bases(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _AzureBasesFinder:
    """Waits for azure-core's exceptions module to be imported (by whoever imports it first)."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != _AZURE_EXCEPTIONS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _AdoptingLoader(spec.loader)  # type: ignore[assignment]
                return spec
        return None


def _link_azure_core() -> None:
    """When azure-core is installed, ``except azure.core.exceptions.ResourceNotFoundError`` catches dockyard's
    errors too: its classes become bases of their dockyard namesakes. Importing azure-core costs a good part
    of a second (its package imports its whole pipeline), so dockyard never imports it: if it is imported
    already the bases are added now, otherwise the moment it is."""
    module = sys.modules.get(_AZURE_EXCEPTIONS)
    if module is not None:
        _adopt_azure_bases(module)
    elif not any(isinstance(finder, _AzureBasesFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AzureBasesFinder())


_link_azure_core()


def error_for_status(status_code: int) -> type[HttpResponseError]:
    """The exception class for an HTTP error status: the one place this mapping lives."""
    return {
        401: ClientAuthenticationError,
        403: ClientAuthenticationError,
        404: ResourceNotFoundError,
        405: OperationNotAllowedError,
        409: ResourceExistsError,
        304: ResourceNotModifiedError,
    }.get(status_code, HttpResponseError)


__all__ = [
    "ClientAuthenticationError",
    "DigestValidationError",
    "DockyardError",
    "HttpResponseError",
    "InsecureCredentialsError",
    "OperationNotAllowedError",
    "PagingError",
    "ResourceExistsError",
    "ResourceNotFoundError",
    "ResourceNotModifiedError",
    "ResponseTooLargeError",
    "ServiceRequestError",
    "TransferCancelledError",
    "UnsupportedOperationError",
    "error_for_status",
]
