"""A loopback server that answers every connection with one canned reply: for client edge cases no real
registry produces (a body cut short, wrong bytes, odd headers)."""

from __future__ import annotations

import socket
import threading


class CannedReplyServer:
    """Answers every connection with ``reply`` after reading the request head; keeps the heads it read."""

    def __init__(self, reply: bytes = b"") -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.reply = reply
        self.heads: list[str] = []
        self.stopped = threading.Event()
        self.listener.settimeout(0.05)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.heads.append(data.decode("latin-1"))
                conn.sendall(self.reply)

    def close(self) -> None:
        """Stop accepting and close the listener."""
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()
