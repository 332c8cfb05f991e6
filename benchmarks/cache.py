"""B13: the pull-through cache (``dockyard serve --cache-rule``) with skopeo as the client.

* cold pull through the cache (nothing cached; the cache fetches from a docker-registry upstream while it serves)
  vs the same pull straight from that upstream (target: at most 1.2x its time);
* warm pull from the cache vs the same pull from a plain ``dockyard serve`` holding the image (target: 1.05x);
* 16 concurrent cold pulls of the image through the cache: the bytes the upstream sent, counted from its access
  log, as a multiple of the image's size (target: 1x, every blob fetched once).
"""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import time

from tests.support.servers import DistributionServer, DockyardServer
from tests.support.skopeo import Skopeo

from benchmarks.context import Context
from benchmarks.images import REPO, TAG, _image
from benchmarks.measure import RunFailed, run_process
from benchmarks.results import Row
from benchmarks.tools import SKOPEO

#: Concurrent cold pulls in the single-flight case.
CONCURRENT = 16
CACHED = "mirror"
_ACCESS = re.compile(r'"GET (\S+) HTTP/[0-9.]+" 200 (\d+)')


def missing() -> str | None:
    for program in ("skopeo", "docker-registry"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install {program})"
    return None


def upstream_bytes(upstream: DistributionServer) -> int:
    """Bytes of every successful GET of a blob or manifest in the upstream's access log so far."""
    return sum(int(size) for path, size in _ACCESS.findall(upstream.log()) if "/blobs/" in path or
               "/manifests/" in path)


def _pull(ctx: Context, skopeo: Skopeo, host: str, repository: str) -> float:
    """One timed ``skopeo copy docker://… oci:…``; seconds."""
    dest = ctx.fresh_dir("pulled")
    argv = [skopeo.program, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
            f"docker://{host}/{repository}:{TAG}", f"oci:{dest}:{TAG}"]
    try:
        return run_process(argv, ctx.logdir, timeout=ctx.settings.timeout, env=skopeo.env).wall_seconds
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _seed(ctx: Context, skopeo: Skopeo, host: str) -> None:
    image = _image(ctx)
    run_process([skopeo.program, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                 f"oci:{image.path}:{TAG}", f"docker://{host}/{REPO}:{TAG}"], ctx.logdir,
                timeout=ctx.settings.timeout, env=skopeo.env)


def _cache_flags(upstream: DistributionServer) -> list[str]:
    return ["--cache-rule", f"{CACHED}/*=http://{upstream.host}/*"]


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
        cached_repo = f"{CACHED}/{REPO}"

        cold = f"cold pull of a {size}: through the cache vs from the upstream"
        cold_rows = [ctx.row("B13", cold, SKOPEO, "dockyard cache (cold)", dockyard=True, nbytes=image.size),
                     ctx.row("B13", cold, SKOPEO, "docker-registry (direct)", nbytes=image.size)]
        for row in ctx.rotations(cold_rows):
            if row.dockyard:
                with ctx.server("dockyard", *_cache_flags(upstream)) as cache:
                    _measure(row, lambda: _pull(ctx, skopeo, cache.host, cached_repo))
            else:
                _measure(row, lambda: _pull(ctx, skopeo, upstream.host, REPO))

        warm = f"warm pull of a {size}: from the cache vs from a plain dockyard serve"
        warm_rows = [ctx.row("B13", warm, SKOPEO, "dockyard cache (warm)", dockyard=True, nbytes=image.size),
                     ctx.row("B13", warm, SKOPEO, "dockyard serve (plain)", nbytes=image.size)]
        with ctx.server("dockyard", *_cache_flags(upstream)) as cache:
            _pull(ctx, skopeo, cache.host, cached_repo)  # fill it
            for row in ctx.rotations(warm_rows):
                host, repository = (cache.host, cached_repo) if row.dockyard else (plain.host, REPO)
                _measure(row, lambda: _pull(ctx, skopeo, host, repository))  # noqa: B023

        flock = f"{CONCURRENT} concurrent cold pulls of a {size} through the cache"
        row = ctx.row("B13", flock, f"{CONCURRENT}x {SKOPEO}", "upstream bytes / image size", unit="x",
                      dockyard=True)
        with ctx.server("dockyard", *_cache_flags(upstream)) as cache:
            before = upstream_bytes(upstream)
            started = time.monotonic()
            try:
                with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
                    list(pool.map(lambda _: _pull(ctx, skopeo, cache.host, cached_repo), range(CONCURRENT)))
            except (RunFailed, OSError) as exc:
                row.fail(str(exc))
                return
            elapsed = time.monotonic() - started
            fetched = upstream_bytes(upstream) - before
            row.add(fetched / image.size)
            row.notes.append(f"{CONCURRENT} concurrent cold pulls: the upstream sent {fetched:,} bytes for a "
                             f"{image.size:,}-byte image; all pulls done in {elapsed:.1f} s")
