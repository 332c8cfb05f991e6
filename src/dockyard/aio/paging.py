"""``AsyncItemPaged``: ``async for`` over a listing, or page by page with ``by_page()``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from ..protocol.messages import Gen
from ..protocol.paging import Pager

T = TypeVar("T")


class _Page(AsyncIterator[T], Generic[T]):
    def __init__(self, items: list[T]) -> None:
        self._items = iter(items)

    def __aiter__(self) -> _Page[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None


class AsyncItemPaged(AsyncIterator[T], Generic[T]):
    """A lazily fetched listing, as azure-core's ``AsyncItemPaged``."""

    def __init__(self, run: Callable[[Gen[Any]], Awaitable[Any]], pager: Pager[T]) -> None:
        self._run = run
        self._pager = pager
        self._items: AsyncIterator[T] | None = None
        self.continuation_token: Any = None

    async def _pages(self, token: Any) -> AsyncIterator[AsyncIterator[T]]:
        while True:
            items, token = await self._run(self._pager.fetch(token))
            self.continuation_token = token
            yield _Page(items)
            if not token:
                return

    def by_page(self, continuation_token: Any = None) -> AsyncIterator[AsyncIterator[T]]:
        """An async iterator of pages (each an async iterator of items)."""
        return self._pages(continuation_token)

    async def _all(self) -> AsyncIterator[T]:
        async for page in self.by_page():
            async for item in page:
                yield item

    def __aiter__(self) -> AsyncItemPaged[T]:
        return self

    async def __anext__(self) -> T:
        if self._items is None:
            self._items = self._all()
        return await self._items.__anext__()
