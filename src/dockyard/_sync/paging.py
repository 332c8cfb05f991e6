"""``ItemPaged``: iterate a listing item by item, or page by page with ``by_page()``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from ..protocol.messages import Gen
from ..protocol.paging import Pager

T = TypeVar("T")


class ItemPaged(Iterator[T], Generic[T]):
    """A lazily fetched listing, as azure-core's ``ItemPaged``: iterate items, or ``by_page()``."""

    def __init__(self, run: Callable[[Gen[Any]], Any], pager: Pager[T]) -> None:
        self._run = run
        self._pager = pager
        self._items: Iterator[T] | None = None
        self.continuation_token: Any = None

    def by_page(self, continuation_token: Any = None) -> Iterator[Iterator[T]]:
        """An iterator of pages (each an iterator of items), starting at ``continuation_token``."""
        token = continuation_token
        while True:
            items, token = self._run(self._pager.fetch(token))
            self.continuation_token = token
            yield iter(items)
            if not token:
                return

    def _all(self) -> Iterator[T]:
        for page in self.by_page():
            yield from page

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._items is None:
            self._items = self._all()
        return next(self._items)

    def __repr__(self) -> str:
        return f"<ItemPaged {self._pager.fetch!r}>"
