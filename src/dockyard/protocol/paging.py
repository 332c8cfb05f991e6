"""Pages of list operations: a page fetcher returns ``(items, continuation)``; ``None`` ends the listing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import PagingError
from .instructions import Gen, Request
from .responses import json_body, next_link, raise_for_status
from .session import DEFAULT_MAX_PAGES, Session

T = TypeVar("T")


class PageGuard:
    """Ends a listing a registry would not let end: a continuation that comes back (a ``Link`` loop) or more
    than ``max_pages`` pages raise :class:`~dockyard.errors.PagingError`."""

    def __init__(self, max_pages: int = DEFAULT_MAX_PAGES, context: str = "listing") -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.max_pages = max_pages
        self.context = context
        self.pages = 0
        self._seen: set[Any] = set()

    def start(self, token: Any) -> None:
        """Record the continuation a read starts at (``None`` for the first page)."""
        if token is not None:
            self._seen.add(_key(token))

    def advance(self, following: Any) -> None:
        """Count one page read; check the continuation it gave (``None`` at the end)."""
        self.pages += 1
        if not following:
            return
        key = _key(following)
        if key in self._seen:
            raise PagingError(f"{self.context}: the registry sent a page link already followed ({following}); "
                              "the listing would never end")
        if self.pages >= self.max_pages:
            raise PagingError(f"{self.context}: more than {self.max_pages} pages; stopped (max_pages)")
        self._seen.add(key)


def _key(token: Any) -> Any:
    try:
        hash(token)
    except TypeError:
        return repr(token)
    return token

PageFetcher = Callable[[Any], Gen[tuple[list[T], Any]]]


class Pager(Generic[T]):
    """A sans-I/O listing: ``fetch(token)`` is a protocol generator returning one page and the next token.

    ``max_pages`` bounds how many pages one read of it follows (see :class:`PageGuard`).
    """

    def __init__(self, fetch: PageFetcher[T], max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self.fetch = fetch
        self.max_pages = max_pages


_START = object()


class PageCursor(Generic[T]):
    """Where a page-by-page read of a :class:`Pager` stands (the state behind both clients' ``by_page()``).

    ``continuation_token`` is the token after the last page read, ``None`` at the end; a read may start
    at a token given by the caller.
    """

    def __init__(self, pager: Pager[T], continuation_token: Any = None) -> None:
        self._pager = pager
        self._next: Any = continuation_token if continuation_token is not None else _START
        self.continuation_token: Any = continuation_token
        self._guard = PageGuard(pager.max_pages)
        self._guard.start(continuation_token)

    @property
    def done(self) -> bool:
        """True once the last page has been read."""
        return self._next is None

    def next_page(self) -> Gen[list[T]]:
        """Fetch the next page (a protocol generator) and move past it."""
        token = None if self._next is _START else self._next
        items, following = yield from self._pager.fetch(token)
        self._guard.advance(following)
        self._next = following or None
        self.continuation_token = self._next
        return items


def link_pages(
    session: Session, first_url: str, extract: Callable[[Any], list[T]], context: str = ""
) -> PageFetcher[T]:
    """A page fetcher that follows ``Link: <…>; rel="next"`` headers, starting at ``first_url``."""

    def fetch(token: Any) -> Gen[tuple[list[T], Any]]:
        url = token or first_url
        response = yield from session.send(Request("GET", url, {"Accept": "application/json"}))
        raise_for_status(response, context=context)
        return extract(json_body(response)), next_link(response)

    return fetch


def sliced_pages(
    produce: Callable[[], Gen[list[Any]]],
    page_size: int | None,
    convert: Callable[[list[Any]], Gen[list[T]]] | None = None,
) -> PageFetcher[T]:
    """Client-side pages of ``page_size`` over a list produced once (for registries that ignore ``n``).

    ``convert`` turns each slice into the page's items (e.g. tag names into tag properties), so only
    the pages actually read cost requests.
    """
    cache: dict[str, list[Any]] = {}

    def fetch(token: Any) -> Gen[tuple[list[T], Any]]:
        if "items" not in cache:
            cache["items"] = yield from produce()
        items = cache["items"]
        start = int(token or 0)
        end = len(items) if not page_size else start + page_size
        page = items[start:end]
        if convert is not None:
            page = yield from convert(page)
        return page, (end if end < len(items) else None)

    return fetch


def list_field(name: str) -> Callable[[Any], list[Any]]:
    """An extractor for a list field that may be ``null`` or missing (treated as empty)."""

    def extract(data: Any) -> list[Any]:
        value = data.get(name) if isinstance(data, dict) else None
        return list(value) if isinstance(value, list) else []

    return extract
