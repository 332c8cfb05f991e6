"""The byte-range grammar of blob transfers, defined once for client and server: ``Range: bytes=a-b`` on
reads, ``Content-Range: bytes a-b/total`` in their answers, and ``Content-Range: a-b`` on chunked uploads."""

from __future__ import annotations

import re

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_CONTENT_RANGE = re.compile(r"\s*bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)\s*", re.IGNORECASE)
_UPLOAD_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")


def range_header(start: int, end: int | None = None) -> str:
    """``bytes=start-end`` (``end`` inclusive; open-ended without it)."""
    return f"bytes={start}-{'' if end is None else end}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a ``bytes=`` range on ``size`` bytes; ``None`` when unsatisfiable."""
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return None
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def content_range(start: int, end: int, size: int) -> str:
    """``bytes start-end/size``: what a partial answer holds."""
    return f"bytes {start}-{end}/{size}"


def unsatisfied_range(size: int) -> str:
    """``bytes */size``: the ``Content-Range`` of a 416 answer."""
    return f"bytes */{size}"


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/total`` as ``(a, b, total)`` (total ``None`` for ``*``); ``None`` when absent or malformed."""
    if not value:
        return None
    match = _CONTENT_RANGE.fullmatch(value)
    if match is None:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def upload_range(start: int, end: int) -> str:
    """``start-end``: the ``Content-Range`` of one chunk of an upload (distribution's form, ``end`` inclusive)."""
    return f"{start}-{end}"


def parse_upload_range(value: str) -> tuple[int, int] | None:
    """``a-b`` (also ``bytes a-b``, ``bytes=a-b``, with a ``/total``) of an upload chunk; ``None`` when malformed."""
    match = _UPLOAD_RANGE.fullmatch(value.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None
