"""B13: the pull-through cache (``dockyard serve --cache-rule``) with skopeo as the client.

* cold pull through the cache (nothing cached; the cache fetches from a docker-registry upstream while it serves)
  vs the same pull straight from that upstream (target: at most 1.2x its time), and, as the ceiling a C proxy
  reaches on the same shared cores, through nginx in front of the upstream: passing the bytes through unbuffered,
  and storing them with ``proxy_cache`` (a fresh empty cache per round, no digest checks); the CPU-seconds per
  pull of skopeo, the upstream and the middle hop go into the notes;
* warm pull from the cache vs the same pull from a plain ``dockyard serve`` holding the image (target: 1.05x);
* 16 concurrent cold pulls of the image through the cache: the bytes the upstream sent, counted from its access
  log, as a multiple of the image's size (target: 1x, every blob fetched once).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.access_logs import logged_requests
from tests.support.servers import DistributionServer, DockyardServer, _Process
from tests.support.skopeo import Skopeo

from benchmarks.context import Context
from benchmarks.images import REPO, TAG, _image
from benchmarks.measure import ClientRun, RunFailed, run_process
from benchmarks.nginx import Nginx, nginx_program
from benchmarks.results import Row
from benchmarks.tools import SKOPEO

#: Concurrent cold pulls in the single-flight case.
CONCURRENT = 16
CACHED = "mirror"
#: The image's repository through the cache.
CACHED_REPO = f"{CACHED}/{REPO}"
_ACCESS = re.compile(r'"GET (\S+) HTTP/[0-9.]+" 200 (\d+)')
#: The servers of the cold-pull rows (the table's server column).
COLD_CACHE = "dockyard cache (cold)"
DIRECT = "docker-registry (direct)"
NGINX_PASS = "nginx pass-through (no store)"
NGINX_CACHE = "nginx proxy_cache (cold)"


def missing() -> str | None:
    for program in ("skopeo", "docker-registry"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install {program})"
    if nginx_program() is None:
        return "nginx is not installed (apt-get install nginx)"
    return None


def upstream_bytes(upstream: DistributionServer) -> int:
    """Bytes of every successful GET of a blob or manifest in the upstream's access log so far."""
    return sum(int(size) for path, size in _ACCESS.findall(upstream.log()) if "/blobs/" in path or
               "/manifests/" in path)


def _pull(ctx: Context, skopeo: Skopeo, host: str, repository: str) -> ClientRun:
    """One timed ``skopeo copy docker://… oci:…``."""
    dest = ctx.fresh_dir("pulled")
    argv = [skopeo.program, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
            f"docker://{host}/{repository}:{TAG}", f"oci:{dest}:{TAG}"]
    try:
        return run_process(argv, ctx.logdir, timeout=ctx.settings.timeout, env=skopeo.env)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _seed(ctx: Context, skopeo: Skopeo, host: str) -> None:
    image = _image(ctx)
    run_process([skopeo.program, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                 f"oci:{image.path}:{TAG}", f"docker://{host}/{REPO}:{TAG}"], ctx.logdir,
                timeout=ctx.settings.timeout, env=skopeo.env)


def _cache_flags(upstream: DistributionServer) -> list[str]:
    return ["--cache-rule", f"{CACHED}/*=http://{upstream.host}/*"]


@contextmanager
def _cold_route(ctx: Context, server: str, upstream: DistributionServer) -> Iterator[tuple[str, str, _Process | None]]:
    """Where a cold pull of row ``server`` goes this round: host, repository and the middle hop (None: straight to
    the upstream). A middle hop is started empty for the round and removed afterwards, so every pull is cold."""
    if server == COLD_CACHE:
        with ctx.server("dockyard", *_cache_flags(upstream)) as cache:
            yield cache.host, CACHED_REPO, cache
    elif server in (NGINX_PASS, NGINX_CACHE):
        workdir = ctx.fresh_dir("nginx")
        try:
            with Nginx(workdir, upstream.host, cache=server == NGINX_CACHE,
                       workers=ctx.settings.server_workers) as proxy:
                yield proxy.host, REPO, proxy
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    else:
        yield upstream.host, REPO, None


def _cold_pull(ctx: Context, row: Row, skopeo: Skopeo, upstream: DistributionServer) -> tuple[float, float]:
    """One round of a cold-pull row: the pull's time and skopeo's CPU into ``row``, the server side's CPU (upstream +
    middle hop) as the row's server CPU; returns (upstream, middle hop) CPU-seconds."""
    with _cold_route(ctx, row.server, upstream) as (host, repository, middle):
        up, mid = ctx.server_cpu(upstream), ctx.server_cpu(middle)
        run = _pull(ctx, skopeo, host, repository)
        up, mid = ctx.server_cpu(upstream) - up, ctx.server_cpu(middle) - mid
        if isinstance(middle, Nginx) and middle.cache and middle.stored_bytes() < (row.nbytes or 0):
            raise RunFailed(f"nginx stored {middle.stored_bytes():,} bytes of a {row.nbytes:,}-byte image")
    row.add(run.wall_seconds, client_cpu=run.cpu_seconds, server_cpu=up + mid)
    return up, mid


def _cpu_note(row: Row, split: list[tuple[float, float]]) -> str:
    """Medians of skopeo's, the upstream's and the middle hop's CPU-seconds per pull, and the least wall time they
    need on this machine's cores."""
    skopeo, up = statistics.median(row.client_cpu), statistics.median(u for u, _ in split)
    parts = [f"skopeo {skopeo:.2f}", f"upstream {up:.2f}"]
    total = skopeo + up
    if row.server != DIRECT:
        mid = statistics.median(m for _, m in split)
        parts.append(f"middle hop {mid:.2f}")
        total += mid
    cores = os.cpu_count() or 1
    return (f"cold pull via {row.server}, CPU-s per pull (median of {len(split)}): {', '.join(parts)}; "
            f"{total:.2f} CPU-s on {cores} cores ≥ {total / cores:.2f} s")


def _request_counts(requests: list[tuple[str, str, int]], blobs: int) -> str:
    """The upstream's requests during the concurrent pulls, by method and kind, from its access log."""
    counted: dict[str, int] = {}
    for method, path, status in requests:
        kind = "blob" if "/blobs/" in path else "manifest" if "/manifests/" in path else "other"
        key = f"{method} {kind} {status}"
        counted[key] = counted.get(key, 0) + 1
    listed = ", ".join(f"{n} {key}" for key, n in sorted(counted.items()))
    return (f"{CONCURRENT} concurrent cold pulls: upstream requests (its access log) for an image of {blobs} blobs "
            f"(config and layers): {listed or 'none'}")


def _measure(row: Row, action: object) -> None:
    try:
        row.add(action())  # type: ignore[operator]
    except (RunFailed, OSError) as exc:
        row.fail(str(exc))


def run_b13(ctx: Context) -> None:
    image = _image(ctx)
    size = f"{ctx.settings.image_layers}-layer {image.size >> 20} MiB image"
    skopeo = Skopeo(ctx.fresh_dir("skopeo"))
    with ctx.server("distribution") as upstream, ctx.server("dockyard") as plain:
        assert isinstance(upstream, DistributionServer) and isinstance(plain, DockyardServer)
        _seed(ctx, skopeo, upstream.host)
        _seed(ctx, skopeo, plain.host)

        cold = f"cold pull of a {size}: through the cache vs from the upstream"
        cold_rows = [ctx.row("B13", cold, SKOPEO, server, dockyard=server == COLD_CACHE, nbytes=image.size)
                     for server in (COLD_CACHE, DIRECT, NGINX_PASS, NGINX_CACHE)]
        split: dict[str, list[tuple[float, float]]] = {row.server: [] for row in cold_rows}
        for row in ctx.rotations(cold_rows):
            try:
                split[row.server].append(_cold_pull(ctx, row, skopeo, upstream))
            except (RunFailed, OSError, RuntimeError) as exc:
                row.fail(str(exc))
        for row in cold_rows:
            if row.median is not None:
                row.notes.append(_cpu_note(row, split[row.server]))

        warm = f"warm pull of a {size}: from the cache vs from a plain dockyard serve"
        warm_rows = [ctx.row("B13", warm, SKOPEO, "dockyard cache (warm)", dockyard=True, nbytes=image.size),
                     ctx.row("B13", warm, SKOPEO, "dockyard serve (plain)", nbytes=image.size)]
        with ctx.server("dockyard", *_cache_flags(upstream)) as cache:
            _pull(ctx, skopeo, cache.host, CACHED_REPO)  # fill it
            for row in ctx.rotations(warm_rows):
                host, repository = (cache.host, CACHED_REPO) if row.dockyard else (plain.host, REPO)
                _measure(row, lambda: _pull(ctx, skopeo, host, repository).wall_seconds)  # noqa: B023

        flock = f"{CONCURRENT} concurrent cold pulls of a {size} through the cache"
        row = ctx.row("B13", flock, f"{CONCURRENT}x {SKOPEO}", "upstream bytes / image size", unit="x",
                      dockyard=True)
        with ctx.server("dockyard", *_cache_flags(upstream)) as cache:
            before = upstream_bytes(upstream)
            requests_before = len(logged_requests(upstream))
            started = time.monotonic()
            try:
                with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
                    list(pool.map(lambda _: _pull(ctx, skopeo, cache.host, CACHED_REPO), range(CONCURRENT)))
            except (RunFailed, OSError) as exc:
                row.fail(str(exc))
                return
            elapsed = time.monotonic() - started
            fetched = upstream_bytes(upstream) - before
            row.add(fetched / image.size)
            row.notes.append(f"{CONCURRENT} concurrent cold pulls: the upstream sent {fetched:,} bytes for a "
                             f"{image.size:,}-byte image; all pulls done in {elapsed:.1f} s")
            during = logged_requests(upstream)[requests_before:]
            row.notes.append(_request_counts(during, ctx.settings.image_layers + 1))
