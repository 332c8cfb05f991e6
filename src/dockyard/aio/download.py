"""``AsyncDownloadBlobStream``: the client's verifying, resuming blob iterator.

This module, under ``dockyard/aio/``, is the source of truth: ``dockyard/_sync/download.py`` is generated from
it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..protocol import download as plan
from ..protocol.download import BlobReadState
from .driver import AsyncDriver


class AsyncDownloadBlobStream(plan.BlobStreamInfo, AsyncIterator[bytes]):
    """An iterator over a blob's bytes; the digest is verified when it ends (``DigestValidationError``).

    A dropped connection resumes with a ``Range`` request from the last byte received.
    """

    def __init__(self, driver: AsyncDriver, state: BlobReadState) -> None:
        self._state = state
        self._pieces = driver.stream(plan.stream_blob(state))

    def __aiter__(self) -> AsyncDownloadBlobStream:
        return self

    async def __anext__(self) -> bytes:
        return (await anext(self._pieces))[1]

    async def close(self) -> None:
        """Stop the download and release its connection."""
        await self._pieces.aclose()

    async def __aenter__(self) -> AsyncDownloadBlobStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
