"""The purge planner as a pure function: acr-purge semantics plus the safety rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dockyard.workflows.durations import MAX_DURATION, InvalidDurationError, parse_duration
from dockyard.workflows.purge_plan import (
    InvalidFilterError,
    ManifestRecord,
    PurgePolicy,
    RepositoryListing,
    TagRecord,
    compile_pattern,
    parse_filter,
    plan_repository,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def policy(*filters: str, days: float | None = 1, **kwargs: object) -> PurgePolicy:
    return PurgePolicy(
        filters=tuple(parse_filter(f) for f in filters),
        cutoff=None if days is None else ago(days),
        **kwargs,  # type: ignore[arg-type]
    )


def listing(tags: list[TagRecord], manifests: list[ManifestRecord] | None = None, **kw: object) -> RepositoryListing:
    if manifests is None:
        manifests = [
            ManifestRecord(digest=t.digest, last_updated_on=t.last_updated_on, tags=(t.name,)) for t in tags
        ]
    return RepositoryListing("app", tags, manifests, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("1d12h", timedelta(hours=36)), ("2h", timedelta(hours=2)),
     ("10m", timedelta(minutes=10)), ("1h15m", timedelta(minutes=75)), ("0d", timedelta(0)),
     ("1.5h", timedelta(minutes=90)), ("99999999d", MAX_DURATION)],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "12", "1x", "1d2", "h", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidDurationError):
        parse_duration(text)


def test_filter_split_and_anchoring() -> None:
    f = parse_filter("app:hello-world")
    assert f.matches_repository("app") and not f.matches_repository("myapp")
    assert f.tag.search("x-hello-world-y")
    g = parse_filter("(?:team/)?svc[[:alpha:]]*:v1(?!-a)")
    assert g.matches_repository("team/svc")
    assert g.tag.search("v1-b") and not g.tag.search("v1-a")
    assert parse_filter(".*:^$").tag.pattern == "^$"


@pytest.mark.parametrize("text", ["app", "app:", ":v1", "a:b:c", "app:v[1"])
def test_bad_filters(text: str) -> None:
    with pytest.raises(InvalidFilterError):
        parse_filter(text)


def test_policy_validation() -> None:
    with pytest.raises(InvalidFilterError):
        PurgePolicy(filters=(), cutoff=NOW)
    with pytest.raises(InvalidFilterError):
        PurgePolicy(filters=(parse_filter("a:b"),), cutoff=None)
    with pytest.raises(InvalidFilterError):
        policy("a:b", untagged=True, untagged_only=True)
    with pytest.raises(InvalidFilterError):
        compile_pattern("(", "exclude")
    assert PurgePolicy(untagged_only=True).selects_repository("anything")


def test_age_regex_keep_exclude_locks() -> None:
    tags = [
        TagRecord("v1", digest(1), ago(10)),
        TagRecord("v2", digest(2), ago(9)),
        TagRecord("v3", digest(3), ago(8)),
        TagRecord("v4", digest(4), ago(0.5)),  # too new
        TagRecord("keep-me", digest(5), ago(20)),
        TagRecord("v5-locked", digest(6), ago(30), can_delete=False),
        TagRecord("unknown-age", digest(7), None),
    ]
    plan = plan_repository(listing(tags), policy("app:.*"))
    assert [t.name for t in plan.tags] == ["v3", "v2", "v1", "keep-me"]
    plan = plan_repository(listing(tags), policy("app:.*", keep=2))
    assert [t.name for t in plan.tags] == ["v1", "keep-me"]
    plan = plan_repository(listing(tags), policy("app:.*", excludes=(compile_pattern("^keep", "exclude"),)))
    assert [t.name for t in plan.tags] == ["v3", "v2", "v1"]
    plan = plan_repository(listing(tags), policy("app:.*", include_locked=True))
    assert "v5-locked" in [t.name for t in plan.tags]
    plan = plan_repository(listing(tags), policy("app:^v[12]$", "app:^v3$"))
    assert [t.name for t in plan.tags] == ["v3", "v2", "v1"]
    assert plan.manifests == []  # no --untagged: manifests stay
    assert plan_repository(listing(tags), policy("other:.*")).tags == []


def test_untagged_deletes_manifests_whose_last_tag_goes() -> None:
    tags = [TagRecord("a", digest(1), ago(5)), TagRecord("b", digest(1), ago(5)), TagRecord("c", digest(2), ago(5))]
    manifests = [
        ManifestRecord(digest(1), last_updated_on=ago(5), tags=("a", "b")),
        ManifestRecord(digest(2), last_updated_on=ago(5), tags=("c",)),
        ManifestRecord(digest(3), last_updated_on=ago(5)),  # already untagged
        ManifestRecord(digest(4), last_updated_on=ago(0.1)),  # untagged but new
    ]
    plan = plan_repository(listing(tags, manifests), policy("app:^a$|^c$", untagged=True))
    assert {m.digest for m in plan.manifests} == {digest(2), digest(3)}  # digest(1) keeps tag b
    only = plan_repository(listing(tags, manifests), policy(days=None, untagged_only=True))
    assert only.tags == [] and {m.digest for m in only.manifests} == {digest(3), digest(4)}
    kept = plan_repository(listing(tags, manifests), policy(days=None, untagged_only=True, keep=1))
    assert [m.digest for m in kept.manifests] == [digest(3)]  # the newest (4) is kept


def test_index_children_and_referrers() -> None:
    tagged_index, child_a, child_b = digest(10), digest(11), digest(12)
    old_index, old_child = digest(20), digest(21)
    sig_kept, sig_orphaned = digest(30), digest(31)
    tags = [TagRecord("multi", tagged_index, ago(5)), TagRecord("old", old_index, ago(5))]
    manifests = [
        ManifestRecord(tagged_index, last_updated_on=ago(5), tags=("multi",), children=(child_a, child_b)),
        ManifestRecord(child_a, last_updated_on=ago(5)),
        ManifestRecord(child_b, last_updated_on=ago(5)),
        ManifestRecord(old_index, last_updated_on=ago(5), tags=("old",), children=(old_child,)),
        ManifestRecord(old_child, last_updated_on=ago(5)),
        ManifestRecord(sig_kept, last_updated_on=ago(5), subject=tagged_index),
        ManifestRecord(sig_orphaned, last_updated_on=ago(5), subject=old_index),
    ]
    plan = plan_repository(listing(tags, manifests), policy("app:^old$", untagged=True))
    assert [t.name for t in plan.tags] == ["old"]
    assert [[m.digest for m in wave] for wave in plan.waves] == [[sig_orphaned], [old_index], [old_child]]
    # Untagged-only: the tagged index protects children and its signature; nothing else is old and untagged.
    only = plan_repository(listing(tags, manifests), policy(days=None, untagged_only=True))
    assert only.manifests == []
    # A locked index protects its children too.
    locked = [*manifests[:3], ManifestRecord(old_index, last_updated_on=ago(5), can_delete=False,
                                             children=(old_child,)), *manifests[4:]]
    plan = plan_repository(listing(tags, locked), policy("app:^old$", untagged=True))
    assert plan.manifests == []


def test_unknown_subject_survives_in_incomplete_listings() -> None:
    sig = ManifestRecord(digest(1), last_updated_on=ago(5), subject=digest(99))
    complete = plan_repository(listing([], [sig]), policy(days=None, untagged_only=True))
    assert [m.digest for m in complete.manifests] == [digest(1)]
    partial = plan_repository(listing([], [sig], complete=False), policy(days=None, untagged_only=True))
    assert partial.manifests == []


def test_unknown_age_is_kept() -> None:
    records = [ManifestRecord(digest(1), last_updated_on=None)]
    assert plan_repository(listing([], records), policy(days=1, untagged_only=True)).manifests == []
