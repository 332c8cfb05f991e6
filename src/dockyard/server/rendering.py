"""The one place a :class:`~.errors.RegistryError` becomes an HTTP response (OCI JSON error body)."""

from __future__ import annotations

from starlette.responses import Response

from .api.uploads import upload_headers
from .errors import RegistryError, UploadRangeError


def error_response(error: RegistryError, head: bool = False) -> Response:
    """The error as a response: ``{"errors":[{"code","message","detail"}]}`` (no body for HEAD requests)."""
    body = error.body()
    headers = {"Content-Type": "application/json", **error.headers}
    if isinstance(error, UploadRangeError):
        headers.update(upload_headers(error.state))
    if head:
        headers["Content-Length"] = str(len(body))
        return Response(b"", status_code=error.status, headers=headers)
    return Response(body, status_code=error.status, headers=headers)
