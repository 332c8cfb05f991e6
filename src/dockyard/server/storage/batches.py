"""Values bound into ``IN (...)`` lists a batch at a time: every database limits the variables of one statement
(SQLite 32,766 by default, PostgreSQL 65,535), and a page of a listing may name more manifests than that."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def in_batches(values: Iterable[str], size: int) -> Iterator[list[str]]:
    """``values`` without duplicates, sorted, in lists of at most ``size``."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), size):
        yield wanted[start : start + size]
