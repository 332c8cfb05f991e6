"""Registry errors as the OCI distribution-spec and ACR report them: data (status, code, message, detail).

They are raised by the rules and the HTTP layer alike and rendered in one place (:mod:`.rendering`).
"""

from __future__ import annotations

import json
from typing import Any

from .storage.records import UploadState


class RegistryError(Exception):
    """An error answered with ``{"errors":[{"code","message","detail"}]}`` and ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        """The JSON error body."""
        error = {"code": self.code, "message": self.message, "detail": self.detail if self.detail is not None else {}}
        return json.dumps({"errors": [error]}).encode()


class UploadRangeError(RegistryError):
    """416 RANGE_INVALID for a chunk that does not fit an upload session; carries the session's state (answered
    as its ``Location``/``Range`` headers, so the client can resume)."""

    def __init__(self, message: str, state: UploadState) -> None:
        super().__init__(416, "RANGE_INVALID", message)
        self.state = state


def name_invalid(name: str, why: str = "") -> RegistryError:
    return RegistryError(400, "NAME_INVALID", why or f"invalid repository name {name!r}", {"name": name})


def name_unknown(name: str) -> RegistryError:
    return RegistryError(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})


def tag_invalid(tag: str, why: str = "") -> RegistryError:
    return RegistryError(400, "TAG_INVALID", why or f"invalid tag {tag!r}", {"tag": tag})


def digest_invalid(message: str, digest: str | None = None) -> RegistryError:
    return RegistryError(400, "DIGEST_INVALID", message, {"digest": digest} if digest else None)


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def manifest_unknown(reference: str) -> RegistryError:
    return RegistryError(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": reference})


def tag_unknown(tag: str) -> RegistryError:
    return RegistryError(404, "TAG_UNKNOWN", "tag unknown", {"tag": tag})


def manifest_invalid(message: str, status: int = 400) -> RegistryError:
    return RegistryError(status, "MANIFEST_INVALID", message)


def manifest_blob_unknown(digest: str) -> RegistryError:
    message = f"manifest references unknown content {digest}"
    return RegistryError(400, "MANIFEST_BLOB_UNKNOWN", message, {"digest": digest})


def upload_unknown(upload_id: str) -> RegistryError:
    return RegistryError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": upload_id})


def range_invalid(message: str, headers: dict[str, str] | None = None) -> RegistryError:
    return RegistryError(416, "RANGE_INVALID", message, headers=headers)


def upload_range_invalid(message: str, state: UploadState) -> UploadRangeError:
    return UploadRangeError(message, state)


def pagination_invalid(message: str) -> RegistryError:
    return RegistryError(400, "PAGINATION_NUMBER_INVALID", message)


def locked(message: str) -> RegistryError:
    """A lock (``deleteEnabled``/``writeEnabled``/``readEnabled`` false) forbids the operation: 405 DENIED."""
    return RegistryError(405, "DENIED", message)


def insufficient_storage(condition: str, meaning: str) -> RegistryError:
    """The storage refused a write (``ENOSPC``, ``EROFS``, ``EDQUOT``): 507, nothing of the request was kept."""
    message = f"{meaning} ({condition}); nothing was stored, retry when the operator has fixed it"
    return RegistryError(507, "UNAVAILABLE", message, {"condition": condition})


def bad_request(message: str, code: str = "UNSUPPORTED") -> RegistryError:
    return RegistryError(400, code, message)


def unauthorized(message: str, challenge: str) -> RegistryError:
    return RegistryError(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": challenge})


def denied(message: str, detail: Any = None) -> RegistryError:
    """403 DENIED: the caller is known but may not do this (a repository-scoped token without the action)."""
    return RegistryError(403, "DENIED", message, detail)


def too_many_requests(message: str, retry_after: int) -> RegistryError:
    """429 TOOMANYREQUESTS with ``Retry-After`` (seconds)."""
    return RegistryError(429, "TOOMANYREQUESTS", message, headers={"Retry-After": str(retry_after)})
