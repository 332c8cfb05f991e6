"""Proxy mounts that send requests for addresses in a ``NO_PROXY`` network (``10.0.0.0/8``) direct.

httpx chooses a mount by URL pattern and has no pattern for an address range, so a range cannot be a mount of its
own: each proxy's mount is wrapped instead, and a request whose host is an address in one of the ranges goes out
on the client's direct transport. Which hosts are exempt is :meth:`ClientConfig.exempt`'s one rule, which the lean
blob reader follows too.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx


class ExemptingTransport(httpx.BaseTransport):
    """A proxy mount: ``proxied`` for most requests, ``direct`` (the client's own transport) for exempt hosts."""

    def __init__(self, proxied: httpx.BaseTransport, direct: httpx.BaseTransport,
                 exempt: Callable[[str], bool]) -> None:
        self.proxied = proxied
        self.direct = direct
        self._exempt = exempt

    def pick(self, host: str) -> httpx.BaseTransport:
        """The transport a request to ``host`` goes out on."""
        return self.direct if self._exempt(host) else self.proxied

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.pick(request.url.host).handle_request(request)

    def close(self) -> None:
        """Close the proxy's connections (the direct transport is the client's, which closes it)."""
        self.proxied.close()


class AsyncExemptingTransport(httpx.AsyncBaseTransport):
    """The async client's :class:`ExemptingTransport`."""

    def __init__(self, proxied: httpx.AsyncBaseTransport, direct: httpx.AsyncBaseTransport,
                 exempt: Callable[[str], bool]) -> None:
        self.proxied = proxied
        self.direct = direct
        self._exempt = exempt

    def pick(self, host: str) -> httpx.AsyncBaseTransport:
        """The transport a request to ``host`` goes out on."""
        return self.direct if self._exempt(host) else self.proxied

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.pick(request.url.host).handle_async_request(request)

    async def aclose(self) -> None:
        """Close the proxy's connections (the direct transport is the client's, which closes it)."""
        await self.proxied.aclose()
