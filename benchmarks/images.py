"""B3 and B5: a multi-layer image from an OCI layout into a registry and back to a new OCI layout.

B3 compares the clients (``dockyard copy`` vs ``skopeo copy``) against ``dockyard serve``; B5 compares the servers
(``dockyard serve`` vs ``docker-registry``) under the same client, skopeo. Every (round, tool) pair gets a fresh
server so that nothing is already there; the time is the sum of the push and the pull process wall times (both
CLIs pay their own start-up), the client RSS the larger of the two processes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.images import make_image, write_to_layout
from tests.support.servers import subprocess_env
from tests.support.skopeo import Skopeo

from benchmarks.context import Context, server_label
from benchmarks.measure import ROOT, RunFailed, run_process
from benchmarks.results import Row
from benchmarks.tools import DOCKYARD_CLI, SKOPEO
from dockyard.layout import OCILayout

REPO = "bench/image"
TAG = "v1"


@dataclass
class LayoutImage:
    """The benchmark image, written once per run into an OCI layout."""

    path: Path
    digest: str
    size: int


def _image(ctx: Context) -> LayoutImage:
    cached = getattr(ctx, "_layout_image", None)
    if cached is None:
        layers = ctx.settings.image_layers
        content = make_image(layers=layers, layer_size=ctx.settings.image_size // layers, seed="benchmark")
        path = ctx.workdir / "image-layout"
        write_to_layout(content, OCILayout(path).create(), tag=TAG)
        size = sum(blob.size for blob in content.all_blobs()) + content.size
        cached = LayoutImage(path, content.digest, size)
        ctx._layout_image = cached  # type: ignore[attr-defined]
    return cached


def _dockyard_cli_missing() -> str | None:
    proc = subprocess.run([sys.executable, "-m", "dockyard", "copy", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env=subprocess_env())
    return None if proc.returncode == 0 else "`dockyard copy` is not available yet"


def b3_missing() -> str | None:
    if shutil.which("skopeo") is None:
        return "skopeo is not installed (apt-get install skopeo)"
    return _dockyard_cli_missing()


def b5_missing() -> str | None:
    for program in ("skopeo", "docker-registry"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install {program})"
    return None


def _legs(tool: str, ctx: Context, host: str, src: Path, dst: Path) -> tuple[list[list[str]], dict[str, str]]:
    remote = f"{host}/{REPO}:{TAG}"
    if tool == SKOPEO:
        skopeo = Skopeo(ctx.fresh_dir("skopeo"))
        base = [skopeo.program, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                "--dest-tls-verify=false"]
        return [[*base, f"oci:{src}:{TAG}", f"docker://{remote}"],
                [*base, f"docker://{remote}", f"oci:{dst}:{TAG}"]], skopeo.env
    dockyard = [sys.executable, "-m", "dockyard", "copy", "--quiet"]
    return [[*dockyard, f"oci:{src}:{TAG}", remote], [*dockyard, remote, f"oci:{dst}:{TAG}"]], subprocess_env()


def _round_trip(ctx: Context, row: Row, kind: str, tool: str) -> None:
    image = _image(ctx)
    dst = ctx.fresh_dir("layout-out")
    with ctx.server(kind) as server:
        legs, env = _legs(tool, ctx, server.host, image.path, dst)
        cpu = ctx.server_cpu(server)
        try:
            runs = [run_process(argv, ctx.logdir, timeout=ctx.settings.timeout, env=env) for argv in legs]
            pulled = OCILayout(dst).resolve(TAG).digest
        except (RunFailed, LookupError, OSError) as exc:
            row.fail(str(exc))
            return
        finally:
            shutil.rmtree(dst, ignore_errors=True)
        if pulled != image.digest:
            row.fail(f"pulled manifest {pulled} differs from the pushed {image.digest}")
            return
        row.add(sum(r.wall_seconds for r in runs), client_rss_kib=max(r.peak_rss_kib for r in runs),
                server_rss_kib=ctx.server_peak_kib(server), client_cpu=sum(r.cpu_seconds for r in runs),
                server_cpu=ctx.server_cpu(server) - cpu)


def run_b3(ctx: Context) -> None:
    image = _image(ctx)
    case = f"{ctx.settings.image_layers}-layer {image.size >> 20} MiB image: layout → registry → layout"
    rows = [ctx.row("B3", case, tool, server_label("dockyard"), dockyard=tool == DOCKYARD_CLI, nbytes=2 * image.size)
            for tool in (DOCKYARD_CLI, SKOPEO)]
    for row in ctx.rotations(rows):
        _round_trip(ctx, row, "dockyard", row.tool)


def run_b5(ctx: Context) -> None:
    image = _image(ctx)
    case = f"skopeo push+pull {ctx.settings.image_layers}-layer {image.size >> 20} MiB image"
    kinds = {server_label(kind): kind for kind in ("dockyard", "distribution")}
    rows = [ctx.row("B5", case, SKOPEO, label, dockyard=kind == "dockyard", nbytes=2 * image.size)
            for label, kind in kinds.items()]
    for row in ctx.rotations(rows):
        _round_trip(ctx, row, kinds[row.server], SKOPEO)
