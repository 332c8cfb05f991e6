"""Pages of list operations: a page fetcher returns ``(items, continuation)``; ``None`` ends the listing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .messages import Gen, Request
from .responses import json_body, next_link, raise_for_status
from .session import Session

T = TypeVar("T")

PageFetcher = Callable[[Any], Gen[tuple[list[T], Any]]]


class Pager(Generic[T]):
    """A sans-I/O listing: ``fetch(token)`` is a protocol generator returning one page and the next token."""

    def __init__(self, fetch: PageFetcher[T]) -> None:
        self.fetch = fetch


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


def single_page(produce: Callable[[], Gen[list[T]]]) -> PageFetcher[T]:
    """A page fetcher for listings computed in one go (client-side sorting, plain-OCI enumeration)."""

    def fetch(token: Any) -> Gen[tuple[list[T], Any]]:
        items = yield from produce()
        return items, None

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
