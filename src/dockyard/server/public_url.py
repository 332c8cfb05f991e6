"""``--public-url``: the URL clients reach the registry by when it sits behind a reverse proxy.

:func:`parse_public_url` checks it once at start-up; the API computes every external URL from it (see
``api.common.external_base_url``), and :class:`AbsoluteLocations` turns the relative ``Location`` headers of the
routes into absolute ones under it, as CNCF distribution does with its ``http.host`` setting.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def parse_public_url(value: str) -> str:
    """``value`` as ``scheme://host[:port]`` (no trailing slash); :class:`ValueError` naming what is wrong.

    Only ``http`` and ``https``, a host, an optional port, and no path (the registry API lives at ``/v2/``
    on the host's root), user name, query or fragment."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid --public-url {value!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid --public-url {value!r}: the scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"invalid --public-url {value!r}: it names no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"invalid --public-url {value!r}: it must not carry a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid --public-url {value!r}: the registry must be at the root (no path or query)")
    if any(c.isspace() or c in "\"\\<>" for c in parts.netloc):
        raise ValueError(f"invalid --public-url {value!r}: the host contains characters a URL cannot carry")
    netloc = parts.netloc.lower()
    if port is not None and port == {"http": 80, "https": 443}[parts.scheme]:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


class AbsoluteLocations:
    """Prefixes a ``Location`` header that is a path (``/v2/…``) with the public URL."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_absolute(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location and location.startswith("/") and not location.startswith("//"):
                    headers["location"] = self.public_url + location
            await send(message)

        await self.app(scope, receive, send_absolute)
