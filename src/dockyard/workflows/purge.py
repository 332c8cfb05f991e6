"""Purge: list repositories, plan with :mod:`dockyard.workflows.purge_plan`, then delete exactly the plan.

``plan_purge`` only reads; ``execute_plan`` deletes what a plan lists and nothing else, so a dry run (the plan)
and a real run (plan + execute) agree by construction.

Ages: a tag's or manifest's ``last_updated_on`` as the client reports it: ACR metadata (``/acr/v1``) where the
registry offers it, else the client derives it from the image config's ``created`` time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import OperationNotAllowedError, ResourceNotFoundError, UnsupportedOperationError
from ..oci import mediatypes as mt
from ..oci.manifest import InvalidManifestError, parse_manifest
from .purge_plan import (
    ManifestRecord,
    PurgePolicy,
    RepositoryListing,
    RepositoryPlan,
    TagRecord,
    plan_repository,
)

#: ``acr purge`` clamps its parallel deletes to this ("max parallel delete requests recommended by ACR").
MAX_CONCURRENCY = 32


def clamp_concurrency(value: int | None) -> int:
    """``--concurrency`` clamped to [1, 32]; ``None`` or <= 0 means the default (8)."""
    if value is None or value <= 0:
        return 8
    return min(value, MAX_CONCURRENCY)


def _parallel_map(function: Callable[[Any], Any], items: Iterable[Any], concurrency: int) -> list[Any]:
    items = list(items)
    if len(items) <= 1 or concurrency <= 1:
        return [function(i) for i in items]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(function, items))


# -- listing -------------------------------------------------------------------------------------------------------

#: Manifest types whose body may carry children or a subject (Docker v2 manifests never do).
_INSPECTED_TYPES = {mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.ORAS_ARTIFACT_MANIFEST}


def _links(client: Any, repository: str, digest: str, media_type: str | None) -> tuple[tuple[str, ...], str | None]:
    """Children and subject of a manifest, read from its body."""
    if media_type is not None and media_type not in _INSPECTED_TYPES:
        return (), None
    try:
        result = client.get_manifest(repository, digest)
    except ResourceNotFoundError:
        return (), None
    try:
        parsed = parse_manifest(result.content, result.media_type)
    except InvalidManifestError:
        return (), None
    children = tuple(d.digest for d in parsed.manifests)
    return children, parsed.subject.digest if parsed.subject else None


def list_repository(client: Any, repository: str, *, with_manifests: bool, concurrency: int = 8) -> RepositoryListing:
    """Read what the planner needs about ``repository``: all tags, and (``with_manifests``) all manifests with
    their children and subjects.

    On registries without a manifest listing, the manifests are those reachable from tags (and index
    children), and the listing is marked incomplete.
    """
    tags = [
        TagRecord(
            name=t.name,
            digest=t.digest,
            last_updated_on=t.last_updated_on,
            can_delete=t.can_delete,
            can_write=t.can_write,
        )
        for t in client.list_tag_properties(repository)
    ]
    listing = RepositoryListing(repository, tags)
    if not with_manifests:
        return listing
    try:
        props = list(client.list_manifest_properties(repository))
        # Only ACR's metadata API lists every manifest; elsewhere the client can list what tags reach.
        has_acr_api = getattr(client, "has_acr_api", None)
        complete = bool(has_acr_api()) if callable(has_acr_api) else True
    except (UnsupportedOperationError, NotImplementedError):
        props = []
        complete = False
    if not props and not complete:
        seen: dict[str, Any] = {}
        for tag in tags:
            if tag.digest not in seen:
                seen[tag.digest] = client.get_manifest_properties(repository, tag.digest)
        props = list(seen.values())
    links = _parallel_map(
        lambda p: _links(client, repository, p.digest, getattr(p, "media_type", None)), props, concurrency
    )
    records = {
        p.digest: ManifestRecord(
            digest=p.digest,
            media_type=getattr(p, "media_type", None),
            last_updated_on=p.last_updated_on,
            tags=tuple(p.tags or ()),
            can_delete=p.can_delete,
            can_write=p.can_write,
            children=children,
            subject=subject,
        )
        for p, (children, subject) in zip(props, links, strict=True)
    }
    if not complete:
        # Children of listed indexes are manifests too; read them so that they can be planned.
        pending = [c for r in list(records.values()) for c in r.children if c not in records]
        while pending:
            digest = pending.pop()
            if digest in records:
                continue
            try:
                p = client.get_manifest_properties(repository, digest)
            except ResourceNotFoundError:
                continue
            children, subject = _links(client, repository, digest, getattr(p, "media_type", None))
            records[digest] = ManifestRecord(
                digest, getattr(p, "media_type", None), p.last_updated_on, tuple(p.tags or ()), p.can_delete,
                p.can_write, children, subject,
            )
            pending.extend(c for c in children if c not in records)
    listing.manifests = list(records.values())
    listing.complete = complete
    return listing


def plan_purge(client: Any, policy: PurgePolicy, *, concurrency: int = 8) -> list[RepositoryPlan]:
    """The purge plan of every repository the policy selects (sorted by name); reads only."""
    repositories = sorted(name for name in client.list_repository_names() if policy.selects_repository(name))
    with_manifests = policy.untagged or policy.untagged_only
    plans = []
    for repository in repositories:
        try:
            listing = list_repository(client, repository, with_manifests=with_manifests, concurrency=concurrency)
        except ResourceNotFoundError:
            continue  # deleted while we were listing
        plans.append(plan_repository(listing, policy))
    return plans


# -- execution -----------------------------------------------------------------------------------------------------


@dataclass
class RepositoryOutcome:
    """What a real run did in one repository."""

    repository: str
    deleted_tags: list[TagRecord] = field(default_factory=list)
    deleted_manifests: list[ManifestRecord] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tags": [t.to_json() for t in self.deleted_tags],
            "manifests": [m.to_json() for m in self.deleted_manifests],
        }


def _delete(unlock: Callable[[], Any] | None, delete: Callable[[], Any]) -> str:
    """Run ``unlock`` (when given) then ``delete``; ``deleted`` or ``skipped`` (405: locked or not allowed).
    404 counts as deleted: someone else got there first."""
    try:
        if unlock is not None:
            unlock()
        delete()
    except ResourceNotFoundError:
        return "deleted"
    except OperationNotAllowedError:
        return "skipped"
    return "deleted"


def _delete_tag(client: Any, repository: str, tag: TagRecord, include_locked: bool) -> str:
    """Untag ``tag``, unlocking it first when ``include_locked``."""
    def unlock() -> Any:
        return client.update_tag_properties(repository, tag.name, can_delete=True, can_write=True)

    return _delete(unlock if include_locked and tag.locked else None, lambda: client.delete_tag(repository, tag.name))


def _delete_manifest(client: Any, repository: str, manifest: ManifestRecord, include_locked: bool) -> str:
    """Delete ``manifest``, unlocking it first when ``include_locked``."""
    def unlock() -> Any:
        return client.update_manifest_properties(repository, manifest.digest, can_delete=True, can_write=True)

    def delete() -> Any:
        return client.delete_manifest(repository, manifest.digest)

    return _delete(unlock if include_locked and manifest.locked else None, delete)


def _block_targets(blocked: set[str], manifest: ManifestRecord) -> None:
    """A kept ``manifest`` keeps what it points to: its children and its subject."""
    blocked.update(manifest.children)
    if manifest.subject:
        blocked.add(manifest.subject)


def _settle(
    outcome: RepositoryOutcome,
    item: TagRecord | ManifestRecord,
    deleted: bool,
    on_delete: Callable[[str, str], None] | None,
) -> bool:
    """Record one deletion or refusal in ``outcome`` (and tell ``on_delete``); returns ``deleted``."""
    if isinstance(item, TagRecord):
        kind, key, name = "tag", item.name, f"{outcome.repository}:{item.name}"
    else:
        kind, key, name = "manifest", item.digest, f"{outcome.repository}@{item.digest}"
    if not deleted:
        outcome.skipped.append({kind: key, "reason": "not allowed (locked)"})
        return False
    if isinstance(item, TagRecord):
        outcome.deleted_tags.append(item)
    else:
        outcome.deleted_manifests.append(item)
    if on_delete:
        on_delete(kind, name)
    return True


def execute_plan(
    client: Any,
    plans: Iterable[RepositoryPlan],
    *,
    include_locked: bool = False,
    concurrency: int = 8,
    on_delete: Callable[[str, str], None] | None = None,
) -> list[RepositoryOutcome]:
    """Delete what ``plans`` list: per repository the tags, then the manifests wave by wave (referrers and
    indexes before what they point to). ``on_delete(kind, name)`` is called after each deletion."""
    outcomes = []
    for plan in plans:
        outcome = RepositoryOutcome(plan.repository)
        repository = plan.repository

        def delete_tag(tag: Any, repository: str = repository) -> Any:
            return _delete_tag(client, repository, tag, include_locked)

        def delete_manifest(manifest: Any, repository: str = repository) -> Any:
            return _delete_manifest(client, repository, manifest, include_locked)

        results = _parallel_map(delete_tag, plan.tags, concurrency)
        for tag, result in zip(plan.tags, results, strict=True):
            _settle(outcome, tag, result == "deleted", on_delete)
        blocked: set[str] = set()
        for wave in plan.waves:
            todo = []
            for manifest in wave:
                if manifest.digest in blocked:
                    # Something that points here was refused: keep this and what it points to.
                    _block_targets(blocked, manifest)
                    outcome.skipped.append({"manifest": manifest.digest, "reason": "still referenced"})
                else:
                    todo.append(manifest)
            results = _parallel_map(delete_manifest, todo, concurrency)
            for manifest, result in zip(todo, results, strict=True):
                if not _settle(outcome, manifest, result == "deleted", on_delete):
                    _block_targets(blocked, manifest)  # what a refused manifest points to must survive too
        outcomes.append(outcome)
    return outcomes


def now_utc() -> datetime:
    """The current time (UTC); the cutoff is ``now_utc() - ago``."""
    return datetime.now(timezone.utc)
