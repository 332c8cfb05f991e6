"""Rich progress bars for transfers: one bar per blob and one for the total, with speed.

Shown only when standard output is a terminal and ``--quiet`` is not given.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..workflows.progress import NoProgress, TransferProgress
from .options import GlobalOptions

if TYPE_CHECKING:  # rich is imported when bars are drawn, not with every command
    from rich.console import Console
    from rich.progress import Progress, TaskID


class RichProgress:
    """A :class:`~dockyard.workflows.progress.TransferProgress` drawing rich bars."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._total = progress.add_task("total", total=0)

    def _grow_total(self, size: int) -> None:
        task = self._progress.tasks[self._total]
        self._progress.update(self._total, total=(task.total or 0) + size)

    def blob_started(self, digest: str, size: int, label: str) -> None:
        with self._lock:
            short = digest.split(":", 1)[-1][:12]
            self._tasks[digest] = self._progress.add_task(f"{label} {short}", total=size)
            self._grow_total(size)

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        with self._lock:
            task = self._tasks.get(digest)
            if task is not None:
                self._progress.advance(task, nbytes)
            self._progress.advance(self._total, nbytes)

    def blob_finished(self, digest: str) -> None:
        with self._lock:
            task = self._tasks.pop(digest, None)
            if task is not None:
                self._progress.remove_task(task)

    def blob_skipped(self, digest: str, size: int, reason: str) -> None:
        with self._lock:
            self._grow_total(size)
            self._progress.advance(self._total, size)


def show_progress(options: GlobalOptions, *, stderr: bool = False) -> bool:
    """Bars only on a terminal (standard output, or standard error with ``stderr``), without ``--quiet`` and
    without ``--output json``."""
    stream = sys.stderr if stderr else sys.stdout
    return stream.isatty() and not options.quiet and not options.json


@contextmanager
def transfer_progress(
    options: GlobalOptions, *, stderr: bool = False, console: Console | None = None
) -> Iterator[TransferProgress]:
    """The progress reporter for a command: rich bars, or nothing. ``stderr``: on standard error, for commands
    whose standard output is their report; ``console``: on that (standard error) console, so status lines printed
    through it appear above the bars."""
    stderr = stderr or console is not None
    if not show_progress(options, stderr=stderr):
        yield NoProgress()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    if console is None and stderr:
        from rich.console import Console

        console = Console(stderr=True)
    with Progress(*columns, transient=True, console=console) as progress:
        yield RichProgress(progress)
