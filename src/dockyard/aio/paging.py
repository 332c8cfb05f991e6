"""``AsyncItemPaged``: ``async for`` over a listing, or page by page with ``by_page()``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from ..protocol.instructions import Gen
from ..protocol.paging import PageCursor, Pager

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


class AsyncPageIterator(AsyncIterator[AsyncIterator[T]], Generic[T]):
    """Pages of a listing; ``continuation_token`` resumes after the last page read (``None`` at the end)."""

    def __init__(
        self, run: Callable[[Gen[Any]], Awaitable[Any]], pager: Pager[T], continuation_token: Any = None
    ) -> None:
        self._run = run
        self._cursor = PageCursor(pager, continuation_token)

    @property
    def continuation_token(self) -> Any:
        """The token after the last page read (``None`` at the end); ``by_page(token)`` resumes there."""
        return self._cursor.continuation_token

    def __aiter__(self) -> AsyncPageIterator[T]:
        return self

    async def __anext__(self) -> AsyncIterator[T]:
        if self._cursor.done:
            raise StopAsyncIteration
        return _Page(await self._run(self._cursor.next_page()))


class AsyncItemPaged(AsyncIterator[T], Generic[T]):
    """A lazily fetched listing, as azure-core's ``AsyncItemPaged``."""

    def __init__(self, run: Callable[[Gen[Any]], Awaitable[Any]], pager: Pager[T]) -> None:
        self._run = run
        self._pager = pager
        self._items: AsyncIterator[T] | None = None

    def by_page(self, continuation_token: Any = None) -> AsyncPageIterator[T]:
        """An async iterator of pages (each an async iterator of items)."""
        return AsyncPageIterator(self._run, self._pager, continuation_token)

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
