"""Purge planning: which tags and manifests a purge deletes, as a pure function of registry listings.

The rules are those of ``acr purge`` (Azure/acr-cli) plus ``--exclude`` and stricter safety:

* Filters are ``REPO_REGEX:TAG_REGEX``; the repository side is anchored, the tag side is a search.
* A tag is eligible when it matches, is not excluded, was last updated before the cutoff, and is not
  locked (``can_delete``/``can_write`` false) unless locked ones are included. ``keep`` spares the
  newest N eligible tags of each repository. Deleting a tag means untagging.
* Untagged manifests (``untagged``/``untagged_only``) are deleted unless they are still tagged after the
  tag phase, newer than the cutoff (or of unknown age), locked, a child of a surviving index (at any
  depth), or a referrer (a manifest with a ``subject``) whose subject survives.

Nothing here does I/O: :func:`plan_repository` maps a :class:`RepositoryListing` to a :class:`RepositoryPlan`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class InvalidFilterError(ValueError):
    """A ``--filter`` or ``--exclude`` value that is not a valid pattern."""


@dataclass(frozen=True)
class PurgeFilter:
    """One ``REPO_REGEX:TAG_REGEX`` filter."""

    repository: re.Pattern[str]
    tag: re.Pattern[str]
    text: str

    def matches_repository(self, name: str) -> bool:
        """The repository side is anchored: it must match the whole name."""
        return self.repository.fullmatch(name) is not None


def _top_level_colons(text: str) -> list[int]:
    """Positions of ``:`` outside groups ``(…)`` and classes ``[…]`` (so ``(?:…)`` and ``[[:alpha:]]`` are safe)."""
    positions: list[int] = []
    depth = 0
    in_class = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            if char == "[" and text.startswith("[:", i):
                end = text.find(":]", i + 2)
                if end != -1:
                    i = end + 2
                    continue
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            if text.startswith("[]", i) or text.startswith("[^]", i):
                i += 2 if text[i + 1] == "]" else 3
                continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0:
            positions.append(i)
        i += 1
    return positions


#: POSIX bracket classes (RE2 syntax, which ``acr purge`` accepts) and their Python equivalents.
_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "lower": "a-z",
    "upper": "A-Z",
    "space": r"\s",
    "word": r"\w",
    "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~",
}


def compile_pattern(text: str, what: str) -> re.Pattern[str]:
    """Compile a regular expression (POSIX ``[[:alpha:]]`` classes allowed), turning a syntax error into
    :class:`InvalidFilterError`."""
    for name, replacement in _POSIX_CLASSES.items():
        text = text.replace(f"[:{name}:]", replacement)
    try:
        return re.compile(text)
    except re.error as exc:
        raise InvalidFilterError(f"invalid {what} regular expression {text!r}: {exc}") from None


def parse_filter(text: str) -> PurgeFilter:
    """Parse ``REPO_REGEX:TAG_REGEX`` (exactly one top-level colon, both sides non-empty)."""
    colons = _top_level_colons(text)
    if len(colons) != 1:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "possible nested set" for POSIX classes
                re.compile(text)
        except re.error as exc:  # an unbalanced bracket hides the separating colon: name the real problem
            raise InvalidFilterError(f"invalid filter {text!r}: bad regular expression: {exc}") from None
        raise InvalidFilterError(f"invalid filter {text!r}: expected REPO_REGEX:TAG_REGEX with exactly one ':'")
    repo_text, tag_text = text[: colons[0]], text[colons[0] + 1:]
    if not repo_text or not tag_text:
        raise InvalidFilterError(f"invalid filter {text!r}: both the repository and the tag pattern are required")
    return PurgeFilter(
        repository=compile_pattern(repo_text, "repository"),
        tag=compile_pattern(tag_text, "tag"),
        text=text,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class _Lockable:
    """A tag or manifest the planner leaves alone unless told otherwise: locked against deleting or writing."""

    can_delete: bool | None
    can_write: bool | None

    @property
    def locked(self) -> bool:
        return self.can_delete is False or self.can_write is False


@dataclass(frozen=True)
class TagRecord(_Lockable):
    """What the planner needs to know about a tag."""

    name: str
    digest: str
    last_updated_on: datetime | None = None
    can_delete: bool | None = None
    can_write: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The tag as an entry of a purge report."""
        return {"tag": self.name, "digest": self.digest}


@dataclass(frozen=True)
class ManifestRecord(_Lockable):
    """What the planner needs to know about a manifest: tags, age, locks, children and subject."""

    digest: str
    media_type: str | None = None
    last_updated_on: datetime | None = None
    tags: tuple[str, ...] = ()
    can_delete: bool | None = None
    can_write: bool | None = None
    children: tuple[str, ...] = ()
    subject: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest as an entry of a purge report."""
        return {"digest": self.digest, "media_type": self.media_type}


@dataclass
class RepositoryListing:
    """A repository's tags and manifests, as listed from the registry.

    ``complete`` says whether ``manifests`` holds every manifest of the repository (true on registries with
    a manifest listing API). When it is false, a subject missing from the listing is assumed to exist.
    """

    repository: str
    tags: list[TagRecord] = field(default_factory=list)
    manifests: list[ManifestRecord] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class PurgePolicy:
    """The options of one purge run (see :mod:`dockyard.workflows.purge_plan` for the rules)."""

    filters: tuple[PurgeFilter, ...] = ()
    excludes: tuple[re.Pattern[str], ...] = ()
    cutoff: datetime | None = None
    keep: int = 0
    untagged: bool = False
    untagged_only: bool = False
    include_locked: bool = False

    def __post_init__(self) -> None:
        if self.untagged and self.untagged_only:
            raise InvalidFilterError("--untagged and --untagged-only are mutually exclusive")
        if not self.untagged_only and not self.filters:
            raise InvalidFilterError("at least one --filter is required (unless --untagged-only)")
        if not self.untagged_only and self.cutoff is None:
            raise InvalidFilterError("--ago is required (unless --untagged-only)")
        if self.keep < 0:
            raise InvalidFilterError("--keep must not be negative")

    def selects_repository(self, name: str) -> bool:
        """True when some filter's repository side matches (every repository when there is no filter)."""
        if not self.filters:
            return self.untagged_only
        return any(f.matches_repository(name) for f in self.filters)

    def tag_patterns(self, repository: str) -> list[re.Pattern[str]]:
        """The tag patterns of the filters that select ``repository`` (OR-joined)."""
        return [f.tag for f in self.filters if f.matches_repository(repository)]

    def older_than_cutoff(self, when: datetime | None) -> bool:
        """True when ``when`` is before the cutoff; unknown ages are never old enough; no cutoff = any age."""
        cutoff = _utc(self.cutoff)
        if cutoff is None:
            return True
        when = _utc(when)
        return when is not None and when < cutoff


@dataclass
class RepositoryPlan:
    """What a purge deletes in one repository: tags (untagged) first, then manifests in this order."""

    repository: str
    tags: list[TagRecord] = field(default_factory=list)
    manifests: list[ManifestRecord] = field(default_factory=list)
    #: Manifests grouped in deletion waves: each wave only references manifests of later waves.
    waves: list[list[ManifestRecord]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tags": [t.to_json() for t in self.tags],
            "manifests": [m.to_json() for m in self.manifests],
        }


def _newest_first(when: datetime | None, key: str) -> tuple[int, float, str]:
    """Sort key: newest first, unknown times last, then by name/digest for a stable order."""
    when = _utc(when)
    if when is None:
        return (1, 0.0, key)
    return (0, -when.timestamp(), key)


def plan_tags(listing: RepositoryListing, policy: PurgePolicy) -> list[TagRecord]:
    """The tags a purge untags in ``listing.repository`` (newest first)."""
    if policy.untagged_only:
        return []
    patterns = policy.tag_patterns(listing.repository)
    if not patterns:
        return []
    eligible = [
        tag
        for tag in sorted(listing.tags, key=lambda t: _newest_first(t.last_updated_on, t.name))
        if any(p.search(tag.name) for p in patterns)
        and not any(x.search(tag.name) for x in policy.excludes)
        and policy.older_than_cutoff(tag.last_updated_on)
        and (policy.include_locked or not tag.locked)
    ]
    return eligible[policy.keep:]


def _close_over_survivors(
    candidates: set[str], by_digest: dict[str, ManifestRecord], complete: bool
) -> set[str]:
    """Shrink ``candidates`` until no survivor needs a candidate: children of surviving indexes survive, and
    referrers of surviving subjects survive."""
    deletable = set(candidates)
    changed = True
    while changed:
        changed = False
        for digest, record in by_digest.items():
            if digest in deletable:
                subject = record.subject
                if subject is not None and subject not in deletable and (subject in by_digest or not complete):
                    deletable.discard(digest)
                    changed = True
            else:
                for child in record.children:
                    if child in deletable:
                        deletable.discard(child)
                        changed = True
    return deletable


def _deletion_waves(deletable: set[str], by_digest: dict[str, ManifestRecord]) -> list[list[ManifestRecord]]:
    """Order deletions so that a manifest goes before its children and its subject (referrers, then indexes,
    then images)."""
    pointed_to: dict[str, int] = dict.fromkeys(deletable, 0)
    edges: dict[str, list[str]] = {d: [] for d in deletable}
    for digest in deletable:
        record = by_digest[digest]
        targets = {*record.children, *([record.subject] if record.subject else [])}
        for target in targets:
            if target in deletable and target != digest:
                edges[digest].append(target)
                pointed_to[target] += 1
    waves: list[list[ManifestRecord]] = []
    ready = sorted(d for d, n in pointed_to.items() if n == 0)
    while ready:
        waves.append([by_digest[d] for d in ready])
        following: set[str] = set()
        for digest in ready:
            for target in edges[digest]:
                pointed_to[target] -= 1
                if pointed_to[target] == 0:
                    following.add(target)
        ready = sorted(following)
    return waves


def plan_manifests(
    listing: RepositoryListing, policy: PurgePolicy, deleted_tags: Iterable[str]
) -> list[list[ManifestRecord]]:
    """The untagged manifests a purge deletes once ``deleted_tags`` are gone, in deletion waves."""
    if not (policy.untagged or policy.untagged_only):
        return []
    gone = set(deleted_tags)
    by_digest = {m.digest: m for m in listing.manifests}
    still_tagged = {tag.digest for tag in listing.tags if tag.name not in gone}
    candidates = {
        m.digest
        for m in listing.manifests
        if m.digest not in still_tagged
        and not any(t not in gone for t in m.tags)
        and policy.older_than_cutoff(m.last_updated_on)
        and (policy.include_locked or not m.locked)
    }
    deletable = _close_over_survivors(candidates, by_digest, listing.complete)
    if policy.untagged_only and policy.keep:
        newest = sorted(deletable, key=lambda d: _newest_first(by_digest[d].last_updated_on, d))
        deletable = _close_over_survivors(set(newest[policy.keep:]), by_digest, listing.complete)
    return _deletion_waves(deletable, by_digest)


def plan_repository(listing: RepositoryListing, policy: PurgePolicy) -> RepositoryPlan:
    """The complete plan for one repository."""
    tags = plan_tags(listing, policy)
    waves = plan_manifests(listing, policy, (t.name for t in tags))
    return RepositoryPlan(
        repository=listing.repository,
        tags=tags,
        manifests=[m for wave in waves for m in wave],
        waves=waves,
    )


def plans_to_json(plans: Sequence[RepositoryPlan]) -> list[dict[str, Any]]:
    """The JSON form of several repository plans (repositories without deletions left out)."""
    return [p.to_json() for p in plans if p.tags or p.manifests]
