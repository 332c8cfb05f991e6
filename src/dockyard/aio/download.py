"""``AsyncDownloadBlobStream``: the async client's verifying, resuming blob iterator."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..protocol import download as plan
from ..protocol.download import BlobReadState
from .driver import AsyncDriver


class AsyncDownloadBlobStream(plan.BlobStreamInfo, AsyncIterator[bytes]):
    """An async iterator over a blob's bytes, verified at the end and resumed after dropped connections."""

    def __init__(self, driver: AsyncDriver, state: BlobReadState) -> None:
        self._state = state
        self._pieces = driver.stream(plan.read_blob(state))

    def __aiter__(self) -> AsyncDownloadBlobStream:
        return self

    async def __anext__(self) -> bytes:
        offset_and_data = await self._pieces.__anext__()
        return offset_and_data[1]

    async def close(self) -> None:
        """Stop the download and release its connection."""
        await self._pieces.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncDownloadBlobStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
