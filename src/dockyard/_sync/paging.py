"""``ItemPaged``: iterate a listing item by item, or page by page with ``by_page()``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from ..protocol.instructions import Gen
from ..protocol.paging import PageCursor, Pager

T = TypeVar("T")


class PageIterator(Iterator[Iterator[T]], Generic[T]):
    """Pages of a listing; ``continuation_token`` resumes after the last page read (``None`` at the end)."""

    def __init__(self, run: Callable[[Gen[Any]], Any], pager: Pager[T], continuation_token: Any = None) -> None:
        self._run = run
        self._cursor = PageCursor(pager, continuation_token)

    @property
    def continuation_token(self) -> Any:
        """The token after the last page read (``None`` at the end); ``by_page(token)`` resumes there."""
        return self._cursor.continuation_token

    def __iter__(self) -> PageIterator[T]:
        return self

    def __next__(self) -> Iterator[T]:
        if self._cursor.done:
            raise StopIteration
        return iter(self._run(self._cursor.next_page()))


class ItemPaged(Iterator[T], Generic[T]):
    """A lazily fetched listing, as azure-core's ``ItemPaged``: iterate items, or ``by_page()``."""

    def __init__(self, run: Callable[[Gen[Any]], Any], pager: Pager[T]) -> None:
        self._run = run
        self._pager = pager
        self._items: Iterator[T] | None = None

    def by_page(self, continuation_token: Any = None) -> PageIterator[T]:
        """An iterator of pages (each an iterator of items), starting at ``continuation_token``."""
        return PageIterator(self._run, self._pager, continuation_token)

    def _all(self) -> Iterator[T]:
        for page in self.by_page():
            yield from page

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._items is None:
            self._items = self._all()
        return next(self._items)
