# Generated from dockyard/aio/download.py by scripts/unasync.py: do not edit.
"""``DownloadBlobStream``: the client's verifying, resuming blob iterator.

This module, under ``dockyard/aio/``, is the source of truth: ``dockyard/_sync/download.py`` is generated from
it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..protocol import download as plan
from ..protocol.download import BlobReadState
from .driver import SyncDriver


class DownloadBlobStream(plan.BlobStreamInfo, Iterator[bytes]):
    """An iterator over a blob's bytes; the digest is verified when it ends (``DigestValidationError``).

    A dropped connection resumes with a ``Range`` request from the last byte received.
    """

    def __init__(self, driver: SyncDriver, state: BlobReadState) -> None:
        self._state = state
        self._pieces = driver.stream(plan.stream_blob(state))

    def __iter__(self) -> DownloadBlobStream:
        return self

    def __next__(self) -> bytes:
        return (next(self._pieces))[1]

    def close(self) -> None:
        """Stop the download and release its connection."""
        self._pieces.close()

    def __enter__(self) -> DownloadBlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
