"""Progress reporting for transfers: the workflows call these hooks, front ends render them.

Hooks are called from worker threads; implementations must be thread-safe.
"""

from __future__ import annotations

from typing import Protocol


class TransferProgress(Protocol):
    """Receives transfer events. Sizes and counts are in bytes."""

    def blob_started(self, digest: str, size: int, label: str) -> None:
        """A blob transfer begins (``label`` is a short name such as a file name or ``layer``)."""

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        """``nbytes`` more bytes of the blob moved."""

    def blob_finished(self, digest: str) -> None:
        """The blob is complete."""

    def blob_skipped(self, digest: str, size: int, reason: str) -> None:
        """The blob did not need moving (``reason``: ``exists`` or ``mounted``)."""


class NoProgress:
    """Ignores every event (the default)."""

    def blob_started(self, digest: str, size: int, label: str) -> None:
        pass

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        pass

    def blob_finished(self, digest: str) -> None:
        pass

    def blob_skipped(self, digest: str, size: int, reason: str) -> None:
        pass
