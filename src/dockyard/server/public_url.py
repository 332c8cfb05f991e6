"""``--public-url``: the URL clients reach the registry by when it sits behind a reverse proxy.

:func:`parse_public_url` checks it once at start-up; the API computes every external URL from it (see
``api.common.external_base_url``): the token realm, the token ``service`` and the ACR ``registry`` fields.
``Location`` headers stay relative paths, as ACR sends them: clients resolve them against the URL they used (the
proxy's), and Microsoft's SDK joins them to its endpoint, so an absolute one would break its uploads.
"""

from __future__ import annotations

from urllib.parse import urlsplit


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
