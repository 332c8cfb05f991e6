"""uvicorn's httptools protocol, with request bodies handed to the application without copying.

Stock uvicorn appends every body piece the parser delivers to a ``bytearray`` and copies that into a new
``bytes`` for each ``http.request`` message: two extra copies of every uploaded byte, which made the event loop
the bottleneck of large blob uploads. Here a piece that arrives while nothing is pending is kept as the parser's
own ``bytes`` object, and ``receive()`` passes it on as is (``bytes()`` of a ``bytes`` object is that object).
Pieces that arrive while the application has not yet taken the previous one are joined as before. Flow control
(pausing the socket above uvicorn's high-water mark) is unchanged.

Importing this module needs ``httptools``; :func:`dockyard.server.run.serve` only names it when that is installed.
"""

from __future__ import annotations

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class ZeroCopyBodyProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose ``on_body`` keeps a lone body piece without copying it."""

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle.body or cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            super().on_body(body)
            return
        cycle.body = body  # type: ignore[assignment]
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()
