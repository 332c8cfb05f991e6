"""The exception hierarchy of dockyard.

Names follow azure-core (``ResourceNotFoundError``, ``HttpResponseError`` ...) so code written for
``azure-containerregistry`` keeps its ``except`` clauses. When azure-core is installed, each class here
also inherits from its azure-core namesake, so ``except azure.core.exceptions.ResourceNotFoundError``
catches dockyard's errors too.
"""

from __future__ import annotations

import importlib
from typing import Any

_azure: Any
try:  # pragma: no cover - depends on the environment
    _azure = importlib.import_module("azure.core.exceptions")
except ImportError:  # pragma: no cover
    _azure = None


def _azure_base(name: str) -> tuple[type, ...]:
    base = getattr(_azure, name, None) if _azure is not None else None
    return (base,) if base is not None else ()


# The azure-core bases below are computed (none without azure-core): mypy cannot follow them [misc].
class DockyardError(Exception):
    """Base class of every error dockyard raises on purpose."""


class ServiceRequestError(DockyardError, *_azure_base("ServiceRequestError")):  # type: ignore[misc]
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


class HttpResponseError(DockyardError, *_azure_base("HttpResponseError")):  # type: ignore[misc]
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
