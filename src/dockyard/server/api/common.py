"""Helpers shared by the HTTP APIs: request context, the registry's external URL, paging parameters, JSON
responses."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .. import errors as e
from ..auth import CALLER_GRANT, Grant
from ..registry import Registry

if TYPE_CHECKING:
    from ..cache.service import PullThroughCache

T = TypeVar("T")

#: Largest page a client may ask for.
MAX_PAGE = 100_000


def registry(request: Request) -> Registry:
    """The registry this app serves."""
    served: Registry = request.app.state.registry
    return served


def pull_cache(request: Request) -> PullThroughCache:
    """The pull-through cache of this app (its rules may be empty: then it only passes pulls on)."""
    served: PullThroughCache = request.app.state.cache
    return served


#: A ``Host`` header: a DNS-style name, an IPv4 address or a bracketed IPv6 address, and an optional port.
_HOST = re.compile(r"(?:\[(?P<ip6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?))"
                   r"(?::(?P<port>[0-9]{1,5}))?")


def registry_host(request: Request) -> str:
    """The ``host[:port]`` clients reach this registry by: the token ``service`` name (the ``aud`` of its
    tokens) and the ACR ``registry`` field. From :func:`external_base_url`."""
    return external_base_url(request).split("://", 1)[1]


def external_base_url(request: Request) -> str:
    """The registry's external base URL (``http://host:port``), the one place it is computed: ``--public-url``
    when the server has one, else the request's scheme and ``Host`` header, which must be a plain
    ``host[:port]`` (else 400)."""
    app = request.scope.get("app")
    configured: str | None = getattr(getattr(app, "state", None), "public_url", None)
    if configured:
        return configured
    host = request.headers.get("host") or request.url.netloc
    match = _HOST.fullmatch(host)
    valid = match is not None and int(match.group("port") or 0) <= 65535
    if valid and match is not None and match.group("ip6"):
        try:
            ipaddress.IPv6Address(match.group("ip6"))
        except ValueError:
            valid = False
    if not valid:
        raise e.bad_request(f"invalid Host header {host[:100]!r}: expected host[:port]")
    scheme = "https" if request.scope.get("scheme") in ("https", "wss") else "http"  # what request.url says
    return f"{scheme}://{host.lower()}"


def page_params(request: Request) -> tuple[int | None, str | None]:
    """``n`` and ``last`` query parameters; 400 PAGINATION_NUMBER_INVALID for a bad ``n``."""
    raw = request.query_params.get("n")
    n: int | None = None
    if raw is not None and raw != "":
        try:
            n = int(raw)
        except ValueError:
            raise e.pagination_invalid(f"n must be a non-negative integer, got {raw!r}") from None
        if n < 0 or n > MAX_PAGE:
            raise e.pagination_invalid(f"n must be between 0 and {MAX_PAGE}, got {n}")
    last = request.query_params.get("last") or None
    return n, last


def next_link(path: str, params: dict[str, Any]) -> str:
    """A ``Link`` header value for the next page (relative URL, values percent-encoded)."""
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items() if v is not None)
    return f'<{path}?{query}>; rel="next"'


def fetch_limit(n: int | None) -> int | None:
    """How many rows to fetch for a page of ``n``: one more, to learn whether a next page exists."""
    return None if n is None else n + 1


def page(
    rows: Sequence[T], n: int | None, last: str | None, path: str, cursor: Callable[[T], str], **params: Any
) -> tuple[list[T], dict[str, str]]:
    """Trim ``rows`` (fetched with :func:`fetch_limit`) to one page, with the ``Link`` header to the next page
    when there is one; ``params`` (``orderby``, ``digest``) carry over to that page, ``None`` ones dropped."""
    rows = list(rows)
    if n is None or len(rows) <= n:
        return rows, {}
    rows = rows[:n]
    after = cursor(rows[-1]) if rows else last
    return rows, {"Link": next_link(path, {"last": after, "n": n, **params})}


async def catalog_response(request: Request, path: str) -> Response:
    """One page of repository names (``/v2/_catalog`` and ``/acr/v1/_catalog`` answer alike)."""
    n, last = page_params(request)
    grant: Grant | None = request.scope.get(CALLER_GRANT)
    if grant is None or grant.rights is None:
        names = await registry(request).catalog(last, fetch_limit(n))
    else:
        names = await _listable(registry(request), grant, last, fetch_limit(n))
    names, headers = page(names, n, last, path, str)
    return await json_off_loop({"repositories": names}, headers=headers)


#: Names read per query while filtering a catalog for a repository-scoped token.
_CATALOG_BATCH = 1000


async def _listable(reg: Registry, grant: Grant, last: str | None, limit: int | None) -> list[str]:
    """Up to ``limit`` catalog names after ``last`` that ``grant`` may read (its rights filter the listing)."""
    out: list[str] = []
    batch = max(limit or 0, _CATALOG_BATCH)
    while True:
        chunk = await reg.catalog(last, batch)
        out.extend(name for name in chunk if grant.can_list(name))
        if limit is not None and len(out) >= limit:
            return out[:limit]
        if len(chunk) < batch:
            return out
        last = chunk[-1]


def json_bytes(data: Any) -> bytes:
    """``data`` as compact JSON: orjson (a listing page of 10,000 tags in about a millisecond, where the
    standard library takes tens), the standard library for what orjson refuses (integers beyond 64 bits,
    keys that are not strings)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    return Response(json_bytes(data), status_code=status, headers=headers, media_type=media_type)


async def json_off_loop(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                        media_type: str = "application/json") -> Response:
    """:func:`json_response` built on a worker thread (for listings that may encode to megabytes)."""
    return await asyncio.to_thread(json_response, data, status, headers, media_type)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    """A response without a body (``Content-Length: 0``)."""
    return Response(b"", status_code=status, headers=headers)


async def read_limited(request: Request, limit: int, code: str = "MANIFEST_INVALID") -> bytes:
    """The request body, or 413 with error ``code`` when it exceeds ``limit`` bytes (never buffers more)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdecimal() and int(declared) > limit:
        raise e.RegistryError(413, code, f"body is {declared} bytes; the limit is {limit}")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise e.RegistryError(413, code, f"body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
