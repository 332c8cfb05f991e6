"""Garbage collection run over and over on a thread while a test pushes: for races between gc and writes."""

from __future__ import annotations

import threading
from collections.abc import Callable


class RepeatedCollection:
    """Runs ``collect`` in a loop on a thread from ``with`` until its end; keeps each run's output in ``runs`` and
    any failure in ``failures`` (for the test's other threads too), and sets ``stop`` when the block ends."""

    def __init__(self, collect: Callable[[], str], *, join_timeout: float = 300.0) -> None:
        self.collect = collect
        self.join_timeout = join_timeout
        self.stop = threading.Event()
        self.runs: list[str] = []
        self.failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            while not self.stop.is_set():
                self.runs.append(self.collect())
        except BaseException as exc:  # reported by the main thread
            self.failures.append(exc)

    def __enter__(self) -> RepeatedCollection:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=self.join_timeout)
