"""Proxy mounts that send requests for addresses in a ``NO_PROXY`` network (``10.0.0.0/8``) direct.

httpx chooses a mount by URL pattern and has no pattern for an address range, so a range cannot be a mount of its
own: each proxy's mount is wrapped instead, and a request whose host is an address in one of the ranges goes out
on the client's direct transport. Which hosts are exempt is :meth:`ClientConfig.exempt`'s one rule, which the lean
blob reader follows too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

T = TypeVar("T")


class _Choice(Generic[T]):
    """The two transports of a proxy's mount and the rule that picks between them."""

    def __init__(self, proxied: T, direct: T, exempt: Callable[[str], bool]) -> None:
        self.proxied = proxied
        self.direct = direct
        self._exempt = exempt

    def pick(self, host: str) -> T:
        """The transport a request to ``host`` goes out on."""
        return self.direct if self._exempt(host) else self.proxied


class ExemptingTransport(_Choice[httpx.BaseTransport], httpx.BaseTransport):
    """A proxy mount: ``proxied`` for most requests, ``direct`` (the client's own transport) for exempt hosts."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.pick(request.url.host).handle_request(request)

    def close(self) -> None:
        """Close the proxy's connections (the direct transport is the client's, which closes it)."""
        self.proxied.close()


class AsyncExemptingTransport(_Choice[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport):
    """The async client's :class:`ExemptingTransport`."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.pick(request.url.host).handle_async_request(request)

    async def aclose(self) -> None:
        """Close the proxy's connections (the direct transport is the client's, which closes it)."""
        await self.proxied.aclose()
