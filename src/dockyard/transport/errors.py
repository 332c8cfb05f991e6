"""The SDK's error for an ``httpx`` transport failure (both drivers)."""

from __future__ import annotations

import httpx

from ..errors import ServiceRequestError


def transport_error(exc: httpx.TransportError) -> ServiceRequestError:
    """The SDK's error for a request that could not be completed (refused, dropped, timed out), naming the
    origin it was sent to; a connection that could not be made at all is marked ``connect_failed``."""
    try:
        url: str | None = str(exc.request.url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
    except RuntimeError:  # no request attached
        url = None
    where = f" ({url})" if url else ""
    return ServiceRequestError(f"{type(exc).__name__}: {exc}{where}", error=exc, url=url,
                               connect_failed=isinstance(exc, httpx.ConnectError))
