"""B14: ``dockyard sync`` vs ``skopeo sync`` of many small repositories between two ``dockyard serve`` registries.

The source (one ``dockyard serve``) is seeded once per run with ``repos x tags`` small images (two layers of
their own each, 16 KiB of random bytes per layer), under the prefix ``bench/``. Every (round, tool) pair syncs
it into a fresh, empty ``dockyard serve``; the time is the sync process's wall time (start-up included).

skopeo syncs whole repositories from a YAML source (``skopeo sync --src yaml --dest docker``) so that it, too, does
the job in one process: its ``--src docker`` takes one repository per invocation, which would charge it 50
start-ups. dockyard runs ``dockyard sync SRC/bench DEST/mirror`` with its defaults (8 repositories at a time)
and ``-o json`` (as a script would).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from tests.support.images import make_image, push
from tests.support.servers import subprocess_env
from tests.support.skopeo import Skopeo

from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, run_process
from benchmarks.results import Row

PREFIX = "bench"
DOCKYARD_SYNC = "dockyard sync"
SKOPEO_SYNC = "skopeo sync"


@dataclass(frozen=True)
class Shape:
    repos: int
    tags: int
    layer_size: int


def _shape(ctx: Context) -> Shape:
    return Shape(6, 2, 4096) if ctx.settings.mode == "quick" else Shape(50, 5, 16 * 1024)


def missing() -> str | None:
    if shutil.which("skopeo") is None:
        return "skopeo is not installed (apt-get install skopeo)"
    return None


def _seed(ctx: Context, url: str, shape: Shape) -> tuple[list[str], int]:
    """Push the benchmark content; returns the repositories and the bytes of blobs and manifests."""
    names = [f"{PREFIX}/r{i:02d}" for i in range(shape.repos)]
    size = 0
    for name in names:
        for tag in range(shape.tags):
            image = make_image(layers=2, layer_size=shape.layer_size, seed=f"{name}-{tag}")
            push(image, url, name, f"v{tag}")
            size += image.size + sum(b.size for b in image.all_blobs())
    return names, size


def _count_tags(url: str) -> tuple[int, list[str]]:
    """Every tag of every repository of the registry at ``url``, and the repositories."""
    from dockyard import ContainerRegistryClient

    with ContainerRegistryClient(url, None) as client:
        repositories = list(client.list_repository_names())
        return sum(len(list(client.list_tag_properties(name))) for name in repositories), repositories


def _argv(tool: str, ctx: Context, source_host: str, dest_host: str, names: list[str]) -> tuple[list[str], dict]:
    if tool == SKOPEO_SYNC:
        skopeo = Skopeo(ctx.fresh_dir("skopeo"))
        spec = skopeo.workdir / "sync.yaml"
        listed = "".join(f"    {name}: []\n" for name in names)
        spec.write_text(f"{source_host}:\n  tls-verify: false\n  images:\n{listed}")
        return [skopeo.program, "--insecure-policy", "sync", "--src", "yaml", "--dest", "docker",
                "--dest-tls-verify=false", str(spec), f"{dest_host}/mirror"], skopeo.env
    return [sys.executable, "-m", "dockyard", "sync", "-o", "json", f"{source_host}/{PREFIX}",
            f"{dest_host}/mirror/{PREFIX}"], subprocess_env()


def _one(ctx: Context, row: Row, source_host: str, names: list[str], expected: int) -> None:
    with ctx.server("dockyard", access_log=True) as dest:
        argv, env = _argv(row.tool, ctx, source_host, dest.host, names)
        cpu = ctx.server_cpu(dest)
        try:
            run = run_process(argv, ctx.logdir, timeout=ctx.settings.timeout, env=env)
        except RunFailed as exc:
            row.fail(str(exc))
            return
        synced, repositories = _count_tags(dest.url)
        if synced != expected or len(repositories) != len(names):
            row.fail(f"{synced} of {expected} tags arrived, in {repositories[:3]}...")
            return
        row.add(run.wall_seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(dest),
                client_cpu=run.cpu_seconds, server_cpu=ctx.server_cpu(dest) - cpu)


def run_b14(ctx: Context) -> None:
    shape = _shape(ctx)
    with ctx.server("dockyard") as source:
        names, size = _seed(ctx, source.url, shape)
        case = f"{shape.repos} repositories x {shape.tags} tags ({size >> 10} KiB) → empty registry"
        rows = [ctx.row("B14", case, tool, server_label("dockyard"), dockyard=tool == DOCKYARD_SYNC, nbytes=size)
                for tool in (DOCKYARD_SYNC, SKOPEO_SYNC)]
        for row in ctx.rotations(rows):
            _one(ctx, row, source.host, names, shape.repos * shape.tags)
