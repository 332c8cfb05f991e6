"""The sockets a client's driver has open, so that any thread can cut them all at once.

A thread blocked in ``recv`` or ``send`` on a socket is not woken when another thread closes it (the kernel
keeps the file open for the blocked call); it is when the socket is shut down. :meth:`LiveSockets.cut` shuts down
every socket the driver has opened and not yet let go: a stalled download or a running upload then fails at once
instead of waiting for its read timeout. The sockets are held weakly, so a connection its pool dropped is
forgotten with it; a cut idle connection reads as closed by the server, and its pool drops it before reuse.
"""

from __future__ import annotations

import socket
import threading
import weakref
from typing import Any


class LiveSockets:
    """A thread-safe, weakly held set of open sockets that can be shut down together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def add(self, sock: Any) -> None:
        """Remember ``sock`` (anything that is not a socket is ignored)."""
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.add(sock)

    def add_stream(self, stream: Any) -> None:
        """Remember the socket under an httpcore network stream (its ``socket`` extra)."""
        get_extra_info = getattr(stream, "get_extra_info", None)
        if callable(get_extra_info):
            self.add(get_extra_info("socket"))

    def cut(self) -> None:
        """Shut down (both ways) every remembered socket: blocked reads and writes on them fail now. Their
        owners still close them."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                # The plain socket's shutdown, also for a TLS socket: its own would drop its TLS state under a
                # thread that is reading it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:  # already closed, or never connected
                continue
