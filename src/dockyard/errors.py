"""The exception hierarchy of dockyard.

Names follow azure-core (``ResourceNotFoundError``, ``HttpResponseError`` ...) so code written for
``azure-containerregistry`` keeps its ``except`` clauses. When azure-core is installed, each class here
also inherits from its azure-core namesake, so ``except azure.core.exceptions.ResourceNotFoundError``
catches dockyard's errors too.
"""

from __future__ import annotations

from typing import Any

try:  # pragma: no cover - depends on the environment
    from azure.core import exceptions as _azure
except ImportError:  # pragma: no cover
    _azure = None


def _azure_base(name: str) -> tuple[type, ...]:
    base = getattr(_azure, name, None) if _azure is not None else None
    return (base,) if base is not None else ()


class DockyardError(Exception):
    """Base class of every error dockyard raises on purpose."""


class ServiceRequestError(DockyardError, *_azure_base("ServiceRequestError")):  # type: ignore[misc]
    """The request could not be sent: connection refused or dropped, TLS refused, a timeout."""

    def __init__(self, message: str, *, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.inner_exception = error


class HttpResponseError(DockyardError, *_azure_base("HttpResponseError")):  # type: ignore[misc]
    """The registry answered with an error status.

    ``status_code`` is the HTTP status, ``error_code`` the first OCI/ACR error code of the body
    (``MANIFEST_UNKNOWN``, ``DENIED`` ...), ``errors`` every ``{"code", "message", "detail"}`` entry.
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
    ) -> None:
        text = message or f"Operation returned an invalid status {status_code} {reason or ''}".strip()
        super().__init__(text)
        self.message = text
        self.status_code = status_code
        self.reason = reason
        self.error_code = error_code
        self.errors = list(errors or [])
        self.response = response
        self.model = None
        self.error = None

    def __str__(self) -> str:
        return self.message


class ClientAuthenticationError(HttpResponseError, *_azure_base("ClientAuthenticationError")):  # type: ignore[misc]
    """401/403: missing, wrong or insufficient credentials."""


class ResourceNotFoundError(HttpResponseError, *_azure_base("ResourceNotFoundError")):  # type: ignore[misc]
    """404: the repository, tag, manifest or blob does not exist."""


class ResourceExistsError(HttpResponseError, *_azure_base("ResourceExistsError")):  # type: ignore[misc]
    """409: the resource exists or conflicts with the request."""


class ResourceNotModifiedError(HttpResponseError, *_azure_base("ResourceNotModifiedError")):  # type: ignore[misc]
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
    "OperationNotAllowedError",
    "PagingError",
    "ResourceExistsError",
    "ResourceNotFoundError",
    "ResourceNotModifiedError",
    "ResponseTooLargeError",
    "ServiceRequestError",
    "UnsupportedOperationError",
    "error_for_status",
]
