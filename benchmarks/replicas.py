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
    """A deployment: how many replicas, and whether they share PostgreSQL + S3 behind haproxy."""

    label: str
    replicas: int
    shared: bool


CONFIGS = (
    Config("1 replica, SQLite + files", 1, False),
    Config("1 replica, PostgreSQL + S3 (moto), haproxy", 1, True),
    Config("2 replicas, PostgreSQL + S3 (moto), haproxy", 2, True),
)


def missing() -> str | None:
    """The baseline needs skopeo only; the shared deployments fail with the reason of whatever else is absent."""
    return None if shutil.which("skopeo") else "skopeo is not installed (apt-get install skopeo)"


def _shared_missing() -> str | None:
    return postgres_missing() or moto_missing() or haproxy_missing()


@dataclass
class Deployment:
    """A running deployment: where clients reach it and which process trees are its server side."""

    url: str
    host: str
    servers: list[DockyardServer]
    pids: list[int] = field(default_factory=list)
    cluster: ReplicaCluster | None = None

    def cpu_seconds(self) -> float:
        """CPU seconds of every server-side process so far (replicas, haproxy, PostgreSQL, moto)."""
        return sum(tree_cpu_seconds(pid) for pid in self.pids)

    def replica_peak_kib(self) -> int:
        """Peak RSS summed over the replicas' process trees."""
        return sum(tree_memory_kib(s.proc.pid)[1] for s in self.servers if s.proc is not None)


@contextmanager
def _deployment(ctx: Context, config: Config, database: Postgres | None) -> Iterator[Deployment]:
    if not config.shared:
        with ctx.server("dockyard") as server:
            assert isinstance(server, DockyardServer) and server.proc is not None
            yield Deployment(server.url, server.host, [server], [server.proc.pid])
        return
    assert database is not None
    workdir = ctx.fresh_dir("b10-cluster")
    try:
        with moto(workdir / "moto") as s3:
            url = database.database()
            upgrade(url)
            cluster = ReplicaCluster(workdir, *ctx.dockyard_flags, replicas=config.replicas, metadata_url=url,
                                     storage_url=s3.new_url(), env=s3.env())
            with cluster:
                servers = cluster.replicas
                pids = [s.proc.pid for s in servers if s.proc is not None]
                assert cluster.balancer.proc is not None and s3.proc is not None
                pids += [cluster.balancer.proc.pid, database.pid, s3.proc.pid]
                yield Deployment(cluster.url, cluster.host, servers, pids, cluster)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_b10(ctx: Context) -> None:
    image = _image(ctx)
    size = f"{ctx.settings.image_layers}-layer {image.size >> 20} MiB image"
    conns = ctx.settings.load_connections
    cases = {"push": f"skopeo push {size}", "pull": f"skopeo pull {size}",
             "get": f"manifest GET, {conns} connections"}
    rows = {(kind, config.label): ctx.row("B10", case, "wrk" if kind == "get" else SKOPEO, config.label,
                                          unit="req/s" if kind == "get" else "s", dockyard=config is CONFIGS[0],
                                          nbytes=None if kind == "get" else image.size)
            for kind, case in cases.items() for config in CONFIGS}
    per_request: dict[str, list[tuple[float, float]]] = {}
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
                if label != CONFIGS[0].label:
                    row.fail(reason)
        for round_ in range(ctx.settings.rounds):
            order = CONFIGS[round_ % len(CONFIGS):] + CONFIGS[: round_ % len(CONFIGS)]
            for config in order:
                if rows[("push", config.label)].status != "ok" and rows[("get", config.label)].status != "ok":
                    continue
                try:
                    with _deployment(ctx, config, database) as deployment:
                        _round(ctx, deployment, config, rows, per_request)
                except (RuntimeError, TimeoutError, OSError) as exc:
                    for (_, label), row in rows.items():
                        if label == config.label and row.status == "ok":
                            row.fail(str(exc))
    _notes(rows, per_request, conns)


def _round(ctx: Context, deployment: Deployment, config: Config, rows: dict[tuple[str, str], Row],
           per_request: dict[str, list[tuple[float, float]]]) -> None:
    image = _image(ctx)
    dst = ctx.fresh_dir("b10-layout-out")
    legs, env = _legs(SKOPEO, ctx, deployment.host, image.path, dst)
    try:
        for kind, argv in zip(("push", "pull"), legs, strict=True):
            row = rows[(kind, config.label)]
            cpu = deployment.cpu_seconds()
            try:
                run = run_process(argv, ctx.logdir, timeout=ctx.settings.timeout, env=env)
            except RunFailed as exc:
                row.fail(str(exc))
                return
            row.add(run.wall_seconds, client_rss_kib=run.peak_rss_kib, client_cpu=run.cpu_seconds,
                    server_cpu=deployment.cpu_seconds() - cpu, server_rss_kib=deployment.replica_peak_kib())
        pulled = OCILayout(dst).resolve(TAG).digest
        if pulled != image.digest:
            rows[("pull", config.label)].fail(f"pulled manifest {pulled} differs from the pushed {image.digest}")
            return
    finally:
        shutil.rmtree(dst, ignore_errors=True)
    row = rows[("get", config.label)]
    if row.status != "ok":
        return
    cpu, client = deployment.cpu_seconds(), _children_cpu()
    rate, total, bad = wrk_get(ctx, f"{deployment.url}/v2/{REPO}/manifests/{TAG}", OCI_MANIFEST)
    if total == 0 or bad / total > MAX_ERROR_SHARE:
        row.fail(f"{bad} of {total} requests failed")
        return
    server_cpu, client_cpu = deployment.cpu_seconds() - cpu, _children_cpu() - client
    row.add(rate, client_cpu=client_cpu, server_cpu=server_cpu, server_rss_kib=deployment.replica_peak_kib())
    per_request.setdefault(config.label, []).append((server_cpu / total * 1e6, client_cpu / total * 1e6))
    if deployment.cluster is not None:
        spread = deployment.cluster.requests_per_replica()
        row.notes[:] = [f"{config.label}: requests per replica (haproxy, last round) "
                        + ", ".join(f"{name} {count:,}" for name, count in sorted(spread.items()))]


def _notes(rows: dict[tuple[str, str], Row], per_request: dict[str, list[tuple[float, float]]], conns: int) -> None:
    for config in CONFIGS:
        row = rows[("get", config.label)]
        runs = sorted(per_request.get(config.label, []))
        if row.median is None or not runs:
            continue
        server_us, client_us = runs[len(runs) // 2]
        row.notes.append(
            f"{config.label}: {1e6 / row.median:.0f} µs per request (1/rate at {conns} connections); CPU per request "
            f"{server_us:.0f} µs server side (replicas + haproxy + PostgreSQL + moto) + {client_us:.0f} µs wrk"
        )
    for config in CONFIGS:
        for kind in ("push", "pull"):
            row = rows[(kind, config.label)]
            if row.median is not None and row.server_cpu:
                cpu = sorted(row.server_cpu)[len(row.server_cpu) // 2]
                row.notes.append(f"{config.label}: {kind}: server-side CPU {cpu:.2f} s per {kind} "
                                 "(replicas + haproxy + PostgreSQL + moto)")

