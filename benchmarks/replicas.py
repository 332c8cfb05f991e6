"""B10: one registry on one host vs replicas behind a load balancer — skopeo push, skopeo pull and manifest GET rate.

Three deployments, each fresh for every round (a new database, a new bucket, new processes):

- 1 replica on SQLite + files (``dockyard serve`` alone, no balancer): the baseline;
- 1 replica on PostgreSQL + S3 (``moto_server``) behind haproxy;
- 2 replicas on PostgreSQL + S3 behind haproxy (round-robin, no stickiness: ``tests/support/cluster.py``).

The image is the B3/B5 one (10 layers, 500 MiB, from an OCI layout); the push and the pull are whole ``skopeo
copy`` processes; pulls from S3 follow the registry's redirect to a presigned URL (the default). Manifest GETs
come from ``wrk`` through the balancer. Everything — replicas, haproxy, PostgreSQL, moto and the client — shares
the machine's cores, so the server side's CPU (every replica, haproxy, PostgreSQL and moto together) is reported
per round trip and per request: on a small machine more replicas cannot add cores, only processes.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from tests.support.cluster import ReplicaCluster
from tests.support.servers import DockyardServer

from benchmarks.backends import PeerMissing, Postgres, haproxy_missing, moto, moto_missing, postgres, postgres_missing
from benchmarks.context import Context
from benchmarks.images import REPO, TAG, _image, _legs
from benchmarks.load import MAX_ERROR_SHARE, wrk_get
from benchmarks.measure import RunFailed, run_process, tree_cpu_seconds, tree_memory_kib
from benchmarks.results import Row
from benchmarks.tools import SKOPEO
from dockyard.layout import OCILayout
from dockyard.oci.mediatypes import OCI_MANIFEST
from dockyard.server.storage.schema import upgrade


@dataclass(frozen=True)
class Config:
    """A deployment: how many replicas, whether they share PostgreSQL + S3 behind haproxy, and how many worker
    processes each replica runs (``None``: the run's ``--server-workers``, as every other benchmark)."""

    replicas: int
    shared: bool
    workers: int | None = None

    def label(self, default_workers: int) -> str:
        workers = self.workers or default_workers
        where = "PostgreSQL + S3 (moto), haproxy" if self.shared else "SQLite + files"
        return (f"{self.replicas} replica{'s' if self.replicas > 1 else ''}, {workers} "
                f"worker{'s' if workers > 1 else ''}, {where}")


CONFIGS = (
    Config(1, False),
    Config(1, True),
    Config(2, True),
    # As many server processes as the one-replica deployments: on one small machine, the cost of the processes.
    Config(2, True, workers=1),
)
#: The server-side parts whose CPU is counted, in the order the notes show them.
PARTS = ("replicas", "haproxy", "PostgreSQL", "moto")


def missing() -> str | None:
    """The baseline needs skopeo only; the shared deployments fail with the reason of whatever else is absent."""
    return None if shutil.which("skopeo") else "skopeo is not installed (apt-get install skopeo)"


def _shared_missing() -> str | None:
    return postgres_missing() or moto_missing() or haproxy_missing()


@dataclass
class Deployment:
    """A running deployment: where clients reach it and which process trees make up its server side."""

    url: str
    host: str
    servers: list[DockyardServer]
    parts: dict[str, list[int]] = field(default_factory=dict)
    cluster: ReplicaCluster | None = None

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each server-side part (:data:`PARTS`) present."""
        return {name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in self.parts.items()}

    def replica_peak_kib(self) -> int:
        """Peak RSS summed over the replicas' process trees."""
        return sum(tree_memory_kib(s.proc.pid)[1] for s in self.servers if s.proc is not None)


def _since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def _flags(ctx: Context, config: Config) -> list[str]:
    if config.workers is None:
        return ctx.dockyard_flags
    return ["--workers", str(config.workers)] if config.workers > 1 else []


@contextmanager
def _deployment(ctx: Context, config: Config, database: Postgres | None) -> Iterator[Deployment]:
    if not config.shared:
        with ctx.server("dockyard") as server:
            assert isinstance(server, DockyardServer) and server.proc is not None
            yield Deployment(server.url, server.host, [server], {"replicas": [server.proc.pid]})
        return
    assert database is not None
    workdir = ctx.fresh_dir("b10-cluster")
    try:
        with moto(workdir / "moto") as s3:
            url = database.database()
            upgrade(url)
            cluster = ReplicaCluster(workdir, *_flags(ctx, config), replicas=config.replicas, metadata_url=url,
                                     storage_url=s3.new_url(), env=s3.env())
            with cluster:
                assert cluster.balancer.proc is not None and s3.proc is not None
                parts = {"replicas": [s.proc.pid for s in cluster.replicas if s.proc is not None],
                         "haproxy": [cluster.balancer.proc.pid], "PostgreSQL": [database.pid], "moto": [s3.proc.pid]}
                yield Deployment(cluster.url, cluster.host, cluster.replicas, parts, cluster)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: Per (case, deployment label): each round's server-side CPU seconds by part, and the requests it served (GET).
Usage = dict[tuple[str, str], list[tuple[dict[str, float], int]]]


def run_b10(ctx: Context) -> None:
    image = _image(ctx)
    size = f"{ctx.settings.image_layers}-layer {image.size >> 20} MiB image"
    conns = ctx.settings.load_connections
    cases = {"push": f"skopeo push {size}", "pull": f"skopeo pull {size}",
             "get": f"manifest GET, {conns} connections"}
    labels = {config: config.label(ctx.settings.server_workers) for config in CONFIGS}
    rows = {(kind, labels[config]): ctx.row("B10", case, "wrk" if kind == "get" else SKOPEO, labels[config],
                                            unit="req/s" if kind == "get" else "s", dockyard=config is CONFIGS[0],
                                            nbytes=None if kind == "get" else image.size)
            for kind, case in cases.items() for config in CONFIGS}
    usage: Usage = {}
    with ExitStack() as stack:
        database: Postgres | None = None
        reason = _shared_missing()
        if reason is None:
            try:
                database = stack.enter_context(postgres())
            except (PeerMissing, RuntimeError) as exc:
                reason = str(exc)
        if reason is not None:
            for (_, label), row in rows.items():
                if label != labels[CONFIGS[0]]:
                    row.fail(reason)
        for round_ in range(ctx.settings.rounds):
            order = CONFIGS[round_ % len(CONFIGS):] + CONFIGS[: round_ % len(CONFIGS)]
            for config in order:
                label = labels[config]
                if all(rows[(kind, label)].status != "ok" for kind in cases):
                    continue
                try:
                    with _deployment(ctx, config, database) as deployment:
                        _round(ctx, deployment, label, rows, usage)
                except (RuntimeError, TimeoutError, OSError) as exc:
                    print(f"[B10] {label}: {exc}", file=sys.stderr, flush=True)
                    for (_, row_label), row in rows.items():
                        if row_label == label and row.status == "ok":
                            row.fail(str(exc))
    _notes(rows, usage, conns)


def _round(ctx: Context, deployment: Deployment, label: str, rows: dict[tuple[str, str], Row], usage: Usage) -> None:
    image = _image(ctx)
    dst = ctx.fresh_dir("b10-layout-out")
    legs, env = _legs(SKOPEO, ctx, deployment.host, image.path, dst)
    try:
        for kind, argv in zip(("push", "pull"), legs, strict=True):
            row = rows[(kind, label)]
            before = deployment.cpu()
            try:
                run = run_process(argv, ctx.logdir, timeout=ctx.settings.timeout, env=env)
            except RunFailed as exc:
                print(f"[B10] {label}: {kind} failed: {exc}", file=sys.stderr, flush=True)
                for failed in ("push", "pull") if kind == "push" else ("pull",):
                    rows[(failed, label)].fail(f"{kind} failed: {exc}")
                return
            used = _since(before, deployment.cpu())
            row.add(run.wall_seconds, client_rss_kib=run.peak_rss_kib, client_cpu=run.cpu_seconds,
                    server_cpu=sum(used.values()), server_rss_kib=deployment.replica_peak_kib())
            usage.setdefault((kind, label), []).append((used, 1))
        pulled = OCILayout(dst).resolve(TAG).digest
        if pulled != image.digest:
            rows[("pull", label)].fail(f"pulled manifest {pulled} differs from the pushed {image.digest}")
            return
    finally:
        shutil.rmtree(dst, ignore_errors=True)
    row = rows[("get", label)]
    if row.status != "ok":
        return
    before, client = deployment.cpu(), _children_cpu()
    rate, total, bad = wrk_get(ctx, f"{deployment.url}/v2/{REPO}/manifests/{TAG}", OCI_MANIFEST)
    if total == 0 or bad / total > MAX_ERROR_SHARE:
        row.fail(f"{bad} of {total} requests failed")
        return
    used = _since(before, deployment.cpu())
    row.add(rate, client_cpu=_children_cpu() - client, server_cpu=sum(used.values()),
            server_rss_kib=deployment.replica_peak_kib())
    usage.setdefault(("get", label), []).append((used, total))
    if deployment.cluster is not None:
        spread = deployment.cluster.requests_per_replica()
        row.notes[:] = [f"{label}: requests per replica (haproxy, last round) "
                        + ", ".join(f"{name} {count:,}" for name, count in sorted(spread.items()))]


def _median_parts(runs: list[tuple[dict[str, float], int]], scale: float) -> dict[str, float]:
    """Per part, the median over rounds of CPU seconds per unit (a push, a pull, or a request) times ``scale``."""
    names = [name for name in PARTS if any(name in used for used, _ in runs)]
    return {name: statistics.median(used.get(name, 0.0) / count * scale for used, count in runs) for name in names}


def _breakdown(parts: dict[str, float], unit: str, digits: int) -> str:
    total = sum(parts.values())
    inner = ", ".join(f"{name} {value:.{digits}f}" for name, value in parts.items())
    return f"{total:.{digits}f} {unit} ({inner})" if len(parts) > 1 else f"{total:.{digits}f} {unit}"


def _notes(rows: dict[tuple[str, str], Row], usage: Usage, conns: int) -> None:
    """Server-side CPU by part: per push and pull (seconds), per manifest GET (µs), and the GET time per request."""
    for (kind, label), row in rows.items():
        runs = usage.get((kind, label), [])
        if row.median is None or not runs:
            continue
        if kind == "get":
            parts = _median_parts(runs, 1e6)
            row.notes.append(f"{label}: {1e6 / row.median:.0f} µs per request (1/rate at {conns} connections); "
                             f"server-side CPU per request {_breakdown(parts, 'µs', 0)}")
        else:
            row.notes.append(f"{label}: server-side CPU per {kind} {_breakdown(_median_parts(runs, 1.0), 's', 2)}")
