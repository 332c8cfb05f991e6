"""``dockyard sync SOURCE DEST``: every repository under a registry prefix (or in an ``oci:DIR`` tree) with its tags,
to another registry prefix or ``oci:DIR`` tree; many jobs from a ``--config`` file; again and again with
``--watch``."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..oci import hosts
from ..oci.names import is_valid_repository
from .connect import client_options, credential_for, endpoint_url
from .copy import parse_platforms
from .errors import CommandError, UsageError, describe
from .options import GlobalOptions, command, current
from .output import emit_rows, print_json, status
from .progress import transfer_progress

if TYPE_CHECKING:
    from ..workflows.sync import Side, SyncJob, SyncReport
    from .sync_config import CredentialSpec, JobSpec

EXAMPLE = """
dockyard sync 127.0.0.1:5000/library 127.0.0.1:5000/mirror --tags 'v[0-9].*' --jobs 8
dockyard sync 127.0.0.1:5000/library oci:./library-backup --referrers
dockyard sync oci:./library-backup 127.0.0.1:5000/restored --dry-run
"""

#: The default of ``--jobs``: repositories synced at once.
DEFAULT_JOBS = 8
#: On Ctrl-C, how long (seconds) one round of deleting the upload sessions may take (a destination that does not
#: answer keeps them until they expire).
CLEANUP_WAIT = 2.0
#: The exit status after SIGTERM (128 + 15, as when the signal ends a process).
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the sync winds down as on Ctrl-C, then exits with :data:`EXIT_TERMINATED`."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While in the block, SIGTERM raises :class:`Terminated` in the main thread (as SIGINT raises
    KeyboardInterrupt), so that the sync stops its transfers and deletes its upload sessions before it exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Clients:
    """One client per registry URL for the whole command (their pools are reused by every job and pass)."""

    def __init__(self, options: GlobalOptions, stack: ExitStack, credentials: list[CredentialSpec]) -> None:
        self.options = options
        self.stack = stack
        self.credentials = {hosts.registry_host(c.registry): c for c in credentials}
        self.by_url: dict[str, Any] = {}

    def get(self, url: str) -> Any:
        if url not in self.by_url:
            from .._sync.client import ContainerRegistryClient

            client = ContainerRegistryClient(url, self._credential(url), **client_options(self.options))
            self.by_url[url] = self.stack.enter_context(client)
        return self.by_url[url]

    def _credential(self, url: str) -> Any:
        from ..credentials import BasicCredential, docker_config

        spec = self.credentials.get(hosts.registry_host(url))
        if spec is None:
            return credential_for(self.options, url)
        if spec.password_file is not None:
            try:
                password = spec.password_file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise UsageError(f"password_file {spec.password_file}: {exc.strerror or exc}") from None
            return BasicCredential(spec.username or "", password)
        try:
            found = docker_config.lookup(spec.docker_config or hosts.registry_host(url))
        except ValueError as exc:
            raise UsageError(f"unreadable docker config: {exc}") from None
        if found is None:
            raise UsageError(f"the docker config has no entry for {spec.docker_config or spec.registry} "
                             f"(credentials of {spec.registry})")
        return BasicCredential(*found)

    def abort_uploads(self) -> None:
        """Stop every transfer at once and delete the upload sessions they left (Ctrl-C): each client on a thread
        of its own, waited for at most :data:`CLEANUP_WAIT` seconds (a registry that does not answer keeps its
        sessions until they expire)."""
        threads = [threading.Thread(target=_abort_uploads, args=(client,), name="sync-abort", daemon=True)
                   for client in self.by_url.values()]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + CLEANUP_WAIT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _abort_uploads(client: Any) -> None:
    try:
        client.abort_uploads()
    except Exception:  # on the way out: a registry that cannot be told keeps its session until it expires
        pass


def parse_side(text: str, options: GlobalOptions, clients: _Clients, repositories: tuple[str, ...] | None) -> Side:
    """``oci:DIR`` or ``REGISTRY[/PREFIX]`` (REGISTRY: ``host[:port]`` or ``http(s)://host[:port]``)."""
    from ..workflows.sync import LayoutSide, RegistrySide

    if text.startswith("oci:"):
        if not text[4:]:
            raise UsageError(f"{text!r}: expected oci:DIRECTORY")
        return LayoutSide(Path(text[4:]), repositories)
    scheme, marker, rest = text.partition("://")
    if not marker:
        scheme, rest = "", text
    registry, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if prefix and not is_valid_repository(prefix):
        raise UsageError(f"{text!r}: {prefix!r} is not a repository name or prefix")
    url = endpoint_url(f"{scheme}://{registry}" if scheme else registry, plain_http=options.plain_http)
    return RegistrySide(clients.get(url), url, prefix, repositories)


def build_job(spec: JobSpec, options: GlobalOptions, clients: _Clients) -> SyncJob:
    """A runnable job from its spec: sides connected, patterns compiled, platforms parsed."""
    from ..workflows.sync import SyncError, SyncFilter, SyncJob, compile_pattern

    try:
        filters = SyncFilter(compile_pattern(spec.include, "--include"), compile_pattern(spec.exclude, "--exclude"),
                             compile_pattern(spec.tags, "--tags"))
    except SyncError as exc:
        raise UsageError(str(exc)) from None
    return SyncJob(
        source=parse_side(spec.source, options, clients, spec.repositories),
        destination=parse_side(spec.dest, options, clients, None),
        filter=filters, platforms=tuple(parse_platforms(list(spec.platforms))), referrers=spec.referrers,
        name=spec.name,
    )


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _print_report(options: GlobalOptions, report: SyncReport, *, watching: bool) -> None:
    if options.json:
        if watching:  # one JSON document per line and pass
            sys.stdout.write(json.dumps(report.to_json()) + "\n")
            sys.stdout.flush()
        else:
            print_json(report.to_json())
        return
    rows = [{
        "source": r.source, "destination": r.destination, "tags": f"{len(r.tags_copied)}/{len(r.tags_skipped)}",
        "blobs": f"{r.stats.blobs_copied}/{r.stats.blobs_mounted}/{r.stats.blobs_skipped}",
        "bytes": _human_size(r.stats.bytes_copied), "referrers": len(r.referrers_copied),
        "status": f"failed: {r.error}" if r.error else ("would copy" if report.dry_run and r.tags_copied else "ok"),
    } for r in report.repositories]
    emit_rows(options, rows, [("source", "SOURCE"), ("destination", "DESTINATION"),
                              ("tags", "TAGS COPIED/SKIPPED"), ("blobs", "BLOBS COPIED/MOUNTED/SKIPPED"),
                              ("bytes", "BYTES"), ("referrers", "REFERRERS"), ("status", "STATUS")])
    data = report.to_json()
    verb = "would copy" if report.dry_run else "copied"
    status(options, f"{len(report.repositories)} repositories: {data['tags_copied']} tag(s) {verb}, "
                    f"{data['tags_skipped']} up to date, {data['blobs_copied']} blob(s) {verb}, "
                    f"{data['blobs_mounted']} mounted, {data['failed']} failed")


def _one_line_error(exc: BaseException) -> str:
    return describe(exc)[0]


def register(app: typer.Typer) -> None:
    """Add ``sync`` to ``app``."""

    @command(app, "sync", example=EXAMPLE)
    def sync(
        source: Annotated[str | None, typer.Argument(
            metavar="SOURCE", help="REGISTRY or REGISTRY/PREFIX (every repository under PREFIX), or oci:DIR (one "
                                   "OCI layout per repository, DIR/<repository>).", show_default=False)] = None,
        destination: Annotated[str | None, typer.Argument(
            metavar="DEST", help="REGISTRY, REGISTRY/PREFIX or oci:DIR; a repository keeps its path below the prefix.",
            show_default=False)] = None,
        include: Annotated[str | None, typer.Option(
            "--include", metavar="REGEX",
            help="Only repositories whose path below the source prefix matches REGEX as a whole (re.fullmatch: "
                 "'app/.*', not 'app').")] = None,
        exclude: Annotated[str | None, typer.Option(
            "--exclude", metavar="REGEX", help="Leave out repositories whose path below the prefix matches REGEX as "
                                               "a whole (re.fullmatch).")] = None,
        tags: Annotated[str | None, typer.Option(
            "--tags", metavar="REGEX", help="Only tags matching REGEX as a whole (re.fullmatch); default: all.")
        ] = None,
        platform: Annotated[list[str] | None, typer.Option(
            "--platform", metavar="OS/ARCH[/VARIANT]",
            help="Copy only these platforms of a multi-arch index (repeatable); the index is rewritten to list "
                 "only them, so its digest changes (as with dockyard copy --platform).")] = None,
        referrers: Annotated[bool, typer.Option(
            "--referrers", help="Also copy signatures, SBOMs and other referrers (referrers API, tag-schema "
                                "fallback).")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be copied; write nothing.")
                           ] = False,
        config: Annotated[Path | None, typer.Option(
            "--config", metavar="FILE", help="Jobs, defaults and credentials from a TOML file (or YAML with PyYAML "
                                             "installed); replaces SOURCE DEST.")] = None,
        watch_interval: Annotated[str | None, typer.Option(
            "--watch", metavar="INTERVAL",
            help="Run again every INTERVAL (30s, 5m, 1h) until interrupted; with -o json one JSON line per pass.")
        ] = None,
        jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Repositories synced at once.")
                        ] = DEFAULT_JOBS,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64,
                                                 help="Parallel blob transfers per repository.")] = 4,
    ) -> None:
        """Copy every repository under a prefix, with its tags, to another registry or an OCI layout tree.

        Tags the destination already has at the same digest are skipped, blobs it holds are skipped, blobs
        another of its repositories holds are mounted: a second run moves nothing, and a run that was
        interrupted resumes where it stopped. One failing repository does not stop the others; the exit
        status is 1 when any failed.
        """
        from .sync_config import JobSpec, SyncConfig, parse_config

        options = current()
        interval = _interval(watch_interval)
        if config is not None:
            if source or destination or include or exclude or tags or platform or referrers:
                raise UsageError("--config names the jobs: give SOURCE, DEST, --include, --exclude, --tags, "
                                 "--platform and --referrers in the file (its [defaults] or each job)")
            settings = parse_config(config)
        else:
            if not source or not destination:
                raise UsageError("give SOURCE and DEST (or --config FILE)")
            settings = SyncConfig([JobSpec(source, destination, include, exclude, tags, tuple(platform or ()),
                                           referrers)])
        try:
            with _sigterm_interrupts(), ExitStack() as stack:
                clients = _Clients(options, stack, settings.credentials)
                built = [build_job(spec, options, clients) for spec in settings.jobs]
                progress = stack.enter_context(transfer_progress(options, stderr=True))
                _run(options, built, clients, progress, jobs=jobs, concurrency=concurrency, dry_run=dry_run,
                     interval=interval)
        except Terminated:
            print("dockyard: terminated", file=sys.stderr)
            raise typer.Exit(EXIT_TERMINATED) from None


def _interval(text: str | None) -> float | None:
    if text is None:
        return None
    from ..workflows.durations import InvalidDurationError, parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except InvalidDurationError as exc:
        raise UsageError(f"--watch {text!r}: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"--watch {text!r}: the interval must be more than zero")
    return seconds


def _run(options: GlobalOptions, jobs_: list[SyncJob], clients: _Clients, progress: Any, *, jobs: int,
         concurrency: int, dry_run: bool, interval: float | None) -> None:
    from ..workflows.sync import run_jobs, watch

    def one_pass() -> SyncReport:
        return run_jobs(jobs_, parallel=jobs, concurrency=concurrency, dry_run=dry_run, progress=progress,
                        describe_error=_one_line_error, on_interrupt=clients.abort_uploads,
                        raise_listing_errors=interval is None and len(jobs_) == 1)

    if interval is None:
        report = one_pass()
        _print_report(options, report, watching=False)
        _fail_if_any(report)
        return
    for report in watch(one_pass, interval):
        _print_report(options, report, watching=True)
        if report.failed:
            status(options, f"{len(report.failed)} repositories failed; trying again in {interval:g}s")


def _fail_if_any(report: SyncReport) -> None:
    failed = report.failed
    if failed:
        raise CommandError(f"{len(failed)} of {len(report.repositories)} repositories failed (first: "
                           f"{failed[0].source}: {failed[0].error})")
