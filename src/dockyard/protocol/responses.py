"""Reading responses: OCI/ACR error bodies into typed exceptions, JSON bodies, ``Link`` headers."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin

from ..errors import HttpResponseError, error_for_status
from .messages import Response

_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*rel="?next"?', re.IGNORECASE)


def parse_errors(body: bytes) -> list[dict[str, Any]]:
    """The ``errors`` list of an OCI / ACR error body (empty when the body is not one)."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        return [e for e in data["errors"] if isinstance(e, dict)]
    return []


def error_from_response(response: Response, context: str = "") -> HttpResponseError:
    """The typed exception for an error response, carrying status, OCI error code and message."""
    errors = parse_errors(response.content)
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    code = errors[0].get("code") if errors else None
    detail = errors[0].get("message") if errors else None
    if not detail and response.content and not errors:
        text = response.content[:200].decode("utf-8", "replace").strip()
        detail = text or None
    fallback = f"Operation returned an invalid status {response.status} {reason}"
    parts = [f"({code})" if code else None, detail or fallback]
    message = " ".join(p for p in parts if p)
    if context:
        message = f"{message} [{context}]"
    cls = error_for_status(response.status)
    return cls(
        message.strip(),
        status_code=response.status,
        reason=reason,
        error_code=str(code) if code else None,
        errors=errors,
        response=response,
        subject=context or None,
    )


def raise_for_status(response: Response, *ok: int, context: str = "") -> Response:
    """Return ``response`` when its status is in ``ok`` (default: any 2xx), else raise the typed error."""
    if (response.status in ok) if ok else (200 <= response.status < 300):
        return response
    raise error_from_response(response, context)


def json_body(response: Response) -> Any:
    """The JSON body of ``response``; an ``HttpResponseError`` when it is not JSON."""
    try:
        return json.loads(response.content) if response.content else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HttpResponseError(
            f"the registry answered {response.status} with a body that is not JSON", status_code=response.status
        ) from None


def next_link(response: Response) -> str | None:
    """The absolute URL of the next page from the ``Link`` header, or ``None`` on the last page."""
    header = response.header("link")
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    if match is None:
        # Some registries omit rel; take the first <...> like the original SDK.
        if header.startswith("<") and ">" in header:
            target = header[1 : header.index(">")]
        else:
            return None
    else:
        target = match.group(1)
    return urljoin(response.url, target)
