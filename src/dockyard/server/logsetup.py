"""The server's log output: readable lines (default) or JSON lines on standard output, written on a thread.

Records of the ``dockyard.server`` loggers (the request log :data:`REQUEST_LOGGER` included) go into a bounded
queue; one listener thread writes them, so a slow standard output never blocks the event loop. When the queue
is full (the reader of standard output stopped reading), records are dropped and counted, not waited for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from typing import Any

#: The server's own logger; ``--log-level`` sets its level.
SERVER_LOGGER = "dockyard.server"
#: One record per request, with the fields of :class:`.observe.RequestObserver` in ``record.request``.
REQUEST_LOGGER = "dockyard.server.requests"
#: Records waiting for the writer thread before new ones are dropped.
QUEUE_SIZE = 10_000
#: Seconds a stopping server waits for the writer thread to drain the queue.
STOP_TIMEOUT = 2.0
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME CLIENT SUBJECT "METHOD ROUTE" repo=NAME STATUS in=N out=N 12.3ms`` for requests; else
    ``TIME LEVEL message``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "request", None)
        if not isinstance(fields, dict):
            text = f"{_timestamp(record)} {record.levelname} {record.getMessage()}"
            return text + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")
        return (
            f"{fields['time']} {fields['client'] or '-'} {fields['user'] or '-'} "
            f"\"{fields['method']} {fields['route']}\" repo={fields['repository'] or '-'} {fields['status']} "
            f"in={fields['bytes_in']} out={fields['bytes_out']} {fields['duration_ms']:.1f}ms"
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: a request's fields, or ``{"time","level","logger","message"}``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "request", None)
        if isinstance(fields, dict):
            return json.dumps({"level": record.levelname.lower(), **fields})
        entry: dict[str, Any] = {
            "time": _timestamp(record), "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Never waits: a record that does not fit in the queue is dropped (and counted)."""

    dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


class ServerLog:
    """The handler and writer thread of one server process; :meth:`start` when serving, :meth:`stop` after."""

    def __init__(self, log_format: str = "text", level: str = "info") -> None:
        self.log_format = log_format
        self.level = getattr(logging, level.upper())
        self._queue: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_SIZE)
        self._handler = _DroppingQueueHandler(self._queue)
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(JsonFormatter() if self.log_format == "json" else TextFormatter())
        self._writer = threading.Thread(target=self._write, args=(out,), name="dockyard-log", daemon=True)
        self._writer.start()
        logger = logging.getLogger(SERVER_LOGGER)
        logger.setLevel(self.level)
        logger.addHandler(self._handler)
        logger.propagate = False

    def _write(self, out: logging.Handler) -> None:
        while (record := self._queue.get()) is not None:
            out.handle(record)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Detach, then let the writer finish what is queued, for at most ``timeout`` seconds (standard output may
        be stuck; the writer is a daemon thread and does not hold the process)."""
        logger = logging.getLogger(SERVER_LOGGER)
        logger.removeHandler(self._handler)
        if not logger.handlers:  # another app of this process (tests run several) may still be serving
            logger.propagate = True
        if self._writer is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._writer.join(timeout)
            self._writer = None
