"""Sync whole registries: every repository under a source prefix, with its tags (and referrers), to a destination
registry prefix or a tree of OCI layout directories.

Built on :mod:`dockyard.workflows.copy` (one :class:`~dockyard.workflows.copy.Copier` per repository, one
:class:`~dockyard.workflows.copy.BlobLedger` per destination registry):

* a tag whose destination already names the manifest the source would give it is skipped after two ``HEAD``s
  (the destination holds everything under a manifest it accepted), so a second run moves no blob and an
  interrupted run resumes where it stopped; otherwise blobs the destination holds are skipped (``HEAD``), blobs
  another destination repository holds are mounted, the rest are copied, children before parents;
* with ``platforms`` an index is rewritten to list only those platforms, exactly as ``dockyard copy --platform``
  does (the index's digest changes; it is the same on every run, so the skip above still applies);
* repositories run in parallel (``jobs``); one failing repository is reported and the others go on.

Side layouts (:class:`RegistrySide`, :class:`LayoutSide`): a registry with an optional repository prefix, or
``oci:DIR`` where repository ``REL`` (its path relative to the prefix) is the OCI layout ``DIR/REL``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DockyardError, HttpResponseError, ServiceRequestError
from ..layout import OCILayout
from ..oci.manifest import Platform, parse_manifest
from .copy import BlobLedger, Copier, CopyStats, prepare_root
from .progress import NoProgress, TransferProgress
from .stores import LayoutStore, RegistryStore, Store

#: Tags of the referrers tag schema (``sha256-<hex>``): with ``referrers`` the destination keeps its own.
_REFERRERS_TAG = re.compile(r"sha256-[0-9a-f]{64}")
#: Tries per repository when a connection fails (HTTP errors are retried by the SDK itself); a second try skips
#: what the first finished.
ATTEMPTS = 2
#: File and directory names of an OCI layout; a repository path through them would land inside another layout.
_LAYOUT_NAMES = frozenset({"blobs", "index.json", "oci-layout"})
#: After an interrupt, how long (seconds) the running repositories get to end once their transfers are stopped,
#: before the run ends without waiting for them.
STOP_WAIT = 3.0
#: Meanwhile, how often (seconds) ``on_interrupt`` runs again.
_STOP_POLL = 0.2
#: How long (seconds) the main thread waits for a repository at a time (see :func:`_result`).
_SIGNAL_POLL = 0.1


class SyncError(DockyardError):
    """A sync that cannot run as asked (a registry that denies its catalog, a prefix that names nothing ...)."""


@dataclass(frozen=True)
class SyncFilter:
    """Which repositories and tags a job takes. Every pattern must match the whole text (``re.fullmatch``):
    ``include``/``exclude`` the repository path relative to the source prefix, ``tags`` the tag."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    tags: re.Pattern[str] | None = None

    def takes_repository(self, relative: str) -> bool:
        if self.include is not None and not self.include.fullmatch(relative):
            return False
        return not (self.exclude is not None and self.exclude.fullmatch(relative))

    def takes_tag(self, tag: str) -> bool:
        return self.tags is None or bool(self.tags.fullmatch(tag))


def compile_pattern(text: str | None, what: str) -> re.Pattern[str] | None:
    """``text`` as a regular expression; :class:`SyncError` naming ``what`` when it is not one."""
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise SyncError(f"{what} {text!r} is not a regular expression: {exc}") from None


def join(prefix: str, relative: str) -> str:
    """``prefix/relative`` (either may be empty)."""
    return "/".join(part for part in (prefix, relative) if part)


class RegistrySide:
    """Repositories of a registry under ``prefix`` (``""``: all of them), through one client."""

    def __init__(self, client: Any, url: str, prefix: str = "", repositories: Sequence[str] | None = None) -> None:
        self.client = client
        self.url = url
        self.prefix = prefix.strip("/")
        #: Repository paths (relative to the prefix) given instead of the catalog.
        self.listed = list(repositories) if repositories is not None else None

    def describe(self, relative: str = "") -> str:
        from ..oci import hosts

        return "/".join(part for part in (hosts.registry_host(self.url), self.prefix, relative) if part)

    def repositories(self) -> list[str]:
        """Every repository path under the prefix, relative to it (the prefix itself, when it is a repository,
        is ``""``)."""
        if self.listed is not None:
            return list(self.listed)
        try:
            names = list(self.client.list_repository_names())
        except HttpResponseError as exc:
            if exc.status_code in (401, 403, 404, 405):
                login = "log in (dockyard login) or " if exc.status_code == 401 else ""
                raise SyncError(
                    f"{self.describe()} does not list its repositories (catalog answered {exc.status_code}): "
                    f"{login}name them under 'repositories' in a --config job"
                ) from None
            raise
        found = []
        for name in names:
            if not self.prefix:
                found.append(name)
            elif name == self.prefix:
                found.append("")
            elif name.startswith(self.prefix + "/"):
                found.append(name[len(self.prefix) + 1:])
        if self.prefix and not found:
            raise SyncError(f"{self.describe()}: no repository is named {self.prefix!r} or starts with "
                            f"'{self.prefix}/'")
        return sorted(found)

    def store(self, relative: str, *, create: bool = False) -> RegistryStore:
        repository = join(self.prefix, relative)
        if not repository:
            raise SyncError(f"{self.describe()}: a repository needs a name; give the destination a prefix")
        return RegistryStore(self.client, repository, self.url)


class LayoutSide:
    """``oci:DIR``: one OCI image layout per repository, at ``DIR/<repository path>``."""

    def __init__(self, root: Path, repositories: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.listed = list(repositories) if repositories is not None else None

    def describe(self, relative: str = "") -> str:
        return f"oci:{self.root / relative}" if relative else f"oci:{self.root}"

    def repositories(self) -> list[str]:
        """The layouts under ``DIR`` (any depth), as paths relative to it; the blobs of a layout are not walked."""
        if self.listed is not None:
            return list(self.listed)
        if not self.root.is_dir():
            raise SyncError(f"{self.describe()}: no such directory")
        found = []
        for directory, subdirs, files in os.walk(self.root):
            if "oci-layout" in files:
                found.append(Path(directory).relative_to(self.root).as_posix().strip("."))
                subdirs[:] = [d for d in subdirs if d != "blobs"]
            subdirs.sort()
        return sorted(found)

    def store(self, relative: str, *, create: bool = False) -> LayoutStore:
        parts = [p for p in relative.split("/") if p]
        if any(p in _LAYOUT_NAMES or p in (".", "..") for p in parts):
            raise SyncError(f"repository {relative!r} cannot be stored as an OCI layout under {self.root} "
                            f"(a path part is one of {', '.join(sorted(_LAYOUT_NAMES))})")
        path = self.root.joinpath(*parts)
        return LayoutStore(OCILayout(path).create() if create else OCILayout.open(path))


Side = RegistrySide | LayoutSide


@dataclass
class SyncJob:
    """One source → destination job."""

    source: Side
    destination: Side
    filter: SyncFilter = field(default_factory=SyncFilter)
    platforms: tuple[Platform, ...] = ()
    referrers: bool = False
    name: str = ""


@dataclass
class RepositoryReport:
    """What a job did (or, with ``dry_run``, would do) for one repository."""

    source: str
    destination: str
    tags_copied: list[str] = field(default_factory=list)
    tags_skipped: list[str] = field(default_factory=list)
    referrers_copied: list[str] = field(default_factory=list)
    stats: CopyStats = field(default_factory=CopyStats)
    error: str | None = None
    job: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "source": self.source,
            "destination": self.destination,
            "tags_copied": self.tags_copied,
            "tags_skipped": self.tags_skipped,
            "referrers_copied": self.referrers_copied,
            "blobs_copied": self.stats.blobs_copied,
            "blobs_mounted": self.stats.blobs_mounted,
            "blobs_skipped": self.stats.blobs_skipped,
            "bytes_copied": self.stats.bytes_copied,
            "manifests": self.stats.manifests,
            "error": self.error,
        }


@dataclass
class SyncReport:
    """Every repository of a run, in job then repository order."""

    repositories: list[RepositoryReport] = field(default_factory=list)
    dry_run: bool = False

    @property
    def failed(self) -> list[RepositoryReport]:
        return [r for r in self.repositories if r.failed]

    def to_json(self) -> dict[str, Any]:
        totals = {key: sum(getattr(r.stats, key) for r in self.repositories)
                  for key in ("blobs_copied", "blobs_mounted", "blobs_skipped", "bytes_copied", "manifests")}
        return {
            "dry_run": self.dry_run,
            "repositories": [r.to_json() for r in self.repositories],
            "tags_copied": sum(len(r.tags_copied) for r in self.repositories),
            "tags_skipped": sum(len(r.tags_skipped) for r in self.repositories),
            **totals,
            "failed": len(self.failed),
        }


def _wanted_digest(source: Store, tag: str, destination: Store, platforms: Sequence[Platform]) -> tuple[str, Any]:
    """The digest ``tag`` gets at the destination, and the prepared root when computing it fetched it
    (``None`` when one ``HEAD`` told)."""
    if platforms:
        root = prepare_root(source, tag, destination, platforms)
        return root.digest, root
    digest = source.manifest_digest(tag)  # type: ignore[attr-defined]
    if digest is None:
        from ..errors import ResourceNotFoundError

        raise ResourceNotFoundError(f"{source.describe(tag)} vanished while syncing")
    return digest, None


def _plan_blobs(copier: Copier, root: Any, report: RepositoryReport, look: bool) -> None:
    """Dry run: count the blobs (and bytes) of ``root`` the destination lacks, reading only (``look``: the
    destination exists and is asked)."""
    _, blobs = copier.collect(root)
    for blob in blobs:
        if look and copier.destination.has_blob(blob.digest):
            report.stats.add(blobs_skipped=1)
        else:
            report.stats.add(blobs_copied=1, bytes_copied=blob.size)


def sync_repository(
    job: SyncJob, relative: str, *, ledger: BlobLedger | None = None, progress: TransferProgress | None = None,
    concurrency: int = 4, dry_run: bool = False, describe_error: Callable[[BaseException], str] = str,
) -> RepositoryReport:
    """Sync one repository (``relative`` to the source prefix) of ``job``; errors end up in the report."""
    report = RepositoryReport(job.source.describe(relative), job.destination.describe(relative), job=job.name)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _sync_repository(job, relative, report, ledger, progress or NoProgress(), concurrency, dry_run)
            report.error = None
        except ServiceRequestError as exc:  # a dropped connection: once more, skipping what is done
            report.error = describe_error(exc)
            if attempt < ATTEMPTS:
                continue
        except Exception as exc:  # one repository's failure is reported; the others go on
            report.error = describe_error(exc)
        break
    return report


def _sync_repository(job: SyncJob, relative: str, report: RepositoryReport, ledger: BlobLedger | None,
                     progress: TransferProgress, concurrency: int, dry_run: bool) -> None:
    source = job.source.store(relative)
    destination: Store | None = None
    if not (dry_run and isinstance(job.destination, LayoutSide) and not (job.destination.root / relative).is_dir()):
        destination = job.destination.store(relative, create=not dry_run)
    # A dry run into a layout that does not exist yet looks only at the source.
    copier = Copier(source, destination or source, progress, concurrency, report.stats,
                    skip_existing=destination is not None, ledger=ledger)
    tags = [t for t in sorted(source.tags()) if job.filter.takes_tag(t)
            and not (job.referrers and _REFERRERS_TAG.fullmatch(t))]
    for tag in tags:
        wanted, root = _wanted_digest(source, tag, destination or source, job.platforms)
        present = destination.manifest_digest(tag) if destination is not None else None  # type: ignore[attr-defined]
        if present == wanted:
            if tag not in report.tags_copied:  # (copied by an earlier try of this run)
                report.tags_skipped.append(tag)
        else:
            if tag not in report.tags_copied:
                report.tags_copied.append(tag)
            if root is None:
                root = prepare_root(source, tag, destination or source, job.platforms)
            if dry_run:
                _plan_blobs(copier, root, report, destination is not None)
            else:
                copier.copy_tree(root, tag)
        if job.referrers:
            subjects = _referrer_subjects(source, tag, job.platforms)
            if dry_run:
                present_referrers: set[str] = set()
                for digest in subjects:
                    if destination is not None:
                        present_referrers.update(d.digest for d in destination.referrers(digest))
                    report.referrers_copied.extend(d.digest for d in source.referrers(digest)
                                                   if d.digest not in present_referrers)
            else:
                copier.copy_referrers(subjects, report.referrers_copied, set(subjects))


def _referrer_subjects(source: Store, tag: str, platforms: Sequence[Platform]) -> list[str]:
    """The source manifests whose referrers come along with ``tag``: the one it names and, for an index, the
    (selected) manifests it lists; the referrers' own referrers are followed by the copier."""
    root = source.resolve(tag)
    parsed = parse_manifest(root.body, root.media_type)
    children = [c.digest for c in parsed.manifests
                if not platforms or (c.platform is not None and any(c.platform.matches(p) for p in platforms))]
    return [root.digest, *children]


def run_jobs(
    jobs: Sequence[SyncJob], *, parallel: int = 4, concurrency: int = 4, dry_run: bool = False,
    progress: TransferProgress | None = None, describe_error: Callable[[BaseException], str] = str,
    on_interrupt: Callable[[], None] | None = None, raise_listing_errors: bool = False,
) -> SyncReport:
    """Run ``jobs``: their repositories, ``parallel`` at a time, each moving up to ``concurrency`` blobs at once.

    A job whose repositories cannot be listed is one failed entry (``raise_listing_errors``: the error is
    raised); every other repository still runs. On
    Ctrl-C (or any exception in this thread), repositories not started are cancelled and ``on_interrupt`` runs at
    once, again while the running ones end, and once more after (see :func:`_stop_running`): it must stop every
    transfer at once (cut the connections in use) and delete the upload sessions they left.
    """
    report = SyncReport(dry_run=dry_run)
    ledgers: dict[int, BlobLedger] = {}
    work: list[tuple[SyncJob, str | None, str | None]] = []
    for job in jobs:
        try:
            names = [r for r in job.source.repositories() if job.filter.takes_repository(r)]
        except Exception as exc:  # the job is reported as failed; the other jobs go on
            if raise_listing_errors:
                raise
            work.append((job, None, describe_error(exc)))
            continue
        work.extend((job, name, None) for name in names)
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="sync")
    futures: list[Future[RepositoryReport] | RepositoryReport] = []
    try:
        for job, name, error in work:
            if name is None:
                futures.append(RepositoryReport(job.source.describe(), job.destination.describe(), error=error,
                                                job=job.name))
                continue
            ledger = None
            if isinstance(job.destination, RegistrySide):
                ledger = ledgers.setdefault(id(job.destination.client), BlobLedger())
            futures.append(pool.submit(sync_repository, job, name, ledger=ledger, progress=progress,
                                       concurrency=concurrency, dry_run=dry_run, describe_error=describe_error))
        for item in futures:
            report.repositories.append(_result(item) if isinstance(item, Future) else item)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_running([f for f in futures if isinstance(f, Future)], on_interrupt)
        raise
    pool.shutdown(wait=True)
    return report


def _result(future: Future[RepositoryReport]) -> RepositoryReport:
    """``future``'s result, waited for :data:`_SIGNAL_POLL` seconds at a time. Python runs a signal's handler (Ctrl-C's
    KeyboardInterrupt) in the main thread only once that thread runs again, and a wait without a timeout is not
    woken when the kernel hands the signal to another thread: the interrupt would wait for the transfer to end."""
    while not wait([future], timeout=_SIGNAL_POLL).done:
        pass
    return future.result()


def _stop_running(running: Sequence[Future[RepositoryReport]], on_interrupt: Callable[[], None] | None) -> None:
    """On the way out: run ``on_interrupt`` now, again every :data:`_STOP_POLL` seconds while repositories are
    still running (a request one of them started as the others were stopped is cut too), and once more when they
    have all ended (deleting a session opened meanwhile). Waits at most :data:`STOP_WAIT` seconds for them: the
    run never waits for a transfer to finish, its connections are cut instead."""
    deadline = time.monotonic() + STOP_WAIT
    pending = {future for future in running if not future.done()}
    while True:
        if on_interrupt is not None:
            on_interrupt()
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
            return
        _, pending = wait(pending, timeout=min(_STOP_POLL, remaining))


def watch(run: Callable[[], SyncReport], interval: float,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[SyncReport]:
    """``run()`` again and again, passes starting ``interval`` seconds apart (back to back when a pass takes
    longer), until the caller stops iterating (or Ctrl-C interrupts the wait)."""
    while True:
        started = time.monotonic()
        yield run()
        sleep(max(0.0, interval - (time.monotonic() - started)))
