"""Comparing a migration's source and destination: every metadata row by key and value, every manifest's bytes
against its digest, every blob present at the destination with its size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ...oci.digest import Digest, compute_digest
from ..storage.protocols import BlobStore
from . import rows

#: Mismatches named in a report (the count covers all of them).
SHOWN = 20


@dataclass
class Comparison:
    """What a verification found: counts per kind on each side, and what differs."""

    source: dict[str, int] = field(default_factory=dict)
    destination: dict[str, int] = field(default_factory=dict)
    #: Source items missing at the destination or different there (each a short description).
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0
    #: Destination items the source does not hold, per kind (a failure unless merging).
    extra: dict[str, int] = field(default_factory=dict)
    extra_examples: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < SHOWN:
            self.mismatches.append(text)

    def surplus(self, kind: str, text: str) -> None:
        self.extra[kind] = self.extra.get(kind, 0) + 1
        if len(self.extra_examples) < SHOWN:
            self.extra_examples.append(text)

    def ok(self, *, merge: bool) -> bool:
        return self.mismatch_count == 0 and (merge or not any(self.extra.values()))

    def as_dict(self, *, merge: bool) -> dict[str, Any]:
        return {
            "ok": self.ok(merge=merge),
            "source": self.source,
            "destination": self.destination,
            "mismatch_count": self.mismatch_count,
            "mismatches": self.mismatches,
            "extra": {k: v for k, v in self.extra.items() if v},
            "extra_examples": self.extra_examples,
        }


_SINGULAR = {"repositories": "repository", "scope_maps": "scope map", "tokens": "token"}


def describe_key(kind: rows.Kind, key: rows.Key) -> str:
    """A row's key as people name it (``tag repo:v1``, ``manifest repo@sha256:…``)."""
    if kind is rows.TAGS:
        return f"tag {key[0]}:{key[1]}"
    if kind is rows.MANIFESTS:
        return f"manifest {key[0]}@{key[1]}"
    if kind is rows.BLOB_LINKS:
        return f"blob link {key[0]}@{key[1]}"
    return f"{_SINGULAR[kind.name]} {key[0]}"


def _merged(left: Iterator[tuple[rows.Key, rows.Values]], right: Iterator[tuple[rows.Key, rows.Values]]
            ) -> Iterator[tuple[rows.Key, rows.Values | None, rows.Values | None]]:
    """Two key-ordered walks side by side: (key, left values or None, right values or None)."""
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield a[0], a[1], None
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            yield b[0], None, b[1]
            b = next(right, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(left, None), next(right, None)


def compare_kind(source: sa.Connection, dest: sa.Connection, kind: rows.Kind, found: Comparison,
                 *, only_extra: bool = False) -> None:
    """Compare every row of ``kind``; with ``only_extra`` just look for destination rows the source lacks."""
    found.source[kind.name] = found.destination[kind.name] = 0
    for key, theirs, ours in _merged(rows.walk(source, kind), rows.walk(dest, kind)):
        if theirs is not None:
            found.source[kind.name] += 1
        if ours is not None:
            found.destination[kind.name] += 1
        if theirs is None:
            found.surplus(kind.name, describe_key(kind, key))
        elif only_extra:
            continue
        elif ours is None:
            found.problem(f"{describe_key(kind, key)} is missing at the destination")
        elif theirs != ours:
            columns = [name for name, a, b in zip(kind.values, theirs, ours, strict=True) if a != b]
            found.problem(f"{describe_key(kind, key)} differs at the destination ({', '.join(columns)})")
        elif kind is rows.MANIFESTS:
            _check_manifest(kind, key, ours, found)


def _check_manifest(kind: rows.Kind, key: rows.Key, values: rows.Values, found: Comparison) -> None:
    content = values[kind.values.index("content")]
    digest = Digest.parse(key[1])
    if compute_digest(content, digest.algorithm) != str(digest):
        found.problem(f"{describe_key(kind, key)}: its stored bytes do not match its digest")


def compare_metadata(source: sa.Connection, dest: sa.Connection, found: Comparison) -> None:
    """Compare every kind of metadata row, and the auth version."""
    for kind in rows.KINDS:
        compare_kind(source, dest, kind, found)
    theirs, ours = rows.auth_version(source), rows.auth_version(dest)
    found.source["auth_version"], found.destination["auth_version"] = theirs, ours
    if ours < theirs:
        found.problem(f"the destination's auth version {ours} is below the source's {theirs}")


def foreign_names(source: sa.Connection, dest: sa.Connection) -> Comparison:
    """Repositories, scope maps and tokens the destination holds and the source does not."""
    found = Comparison()
    for kind in rows.IDENTIFYING:
        compare_kind(source, dest, kind, found, only_extra=True)
    return found


def compare_blobs(source: BlobStore, dest: BlobStore, found: Comparison) -> None:
    """Every source blob must be at the destination with the same size (blobs only the destination holds are
    counted, never a failure: unreferenced ones are ``dockyard gc``'s to remove)."""
    present = {str(digest): size for digest, size in dest.iter_sizes()}
    found.destination["blobs"] = len(present)
    found.source["blobs"] = found.source["blob_bytes"] = 0
    found.destination["blob_bytes"] = sum(present.values())
    for digest, size in source.iter_sizes():
        found.source["blobs"] += 1
        found.source["blob_bytes"] += size
        there = present.get(str(digest))
        if there is None:
            found.problem(f"blob {digest} is missing at the destination")
        elif there != size:
            found.problem(f"blob {digest} has {there} bytes at the destination, {size} at the source")
