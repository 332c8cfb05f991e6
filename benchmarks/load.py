"""B6: requests per second for manifest GET and blob HEAD under concurrent load, per server.

Each server holds one small image. Manifest GETs come from ``wrk``; blob HEADs from :mod:`benchmarks.loadgen`
(Debian's wrk 4.1 hangs on HEAD responses, waiting for a body). The load generator runs in its own processes on
the same machine, so it shares the cores with the server, the same way for both servers. Server RSS is read
before and after the load.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from tests.support.images import make_image, push
from tests.support.servers import DistributionServer, DockyardServer

from benchmarks.context import Context, server_label
from benchmarks.measure import tree_memory_kib
from benchmarks.results import Row
from dockyard.oci.mediatypes import OCI_MANIFEST

Server = DockyardServer | DistributionServer

REPO = "bench/load"
LOADGEN = "wrk (GET) / benchmarks.loadgen (HEAD)"
#: More than this share of non-2xx responses makes a load run invalid.
MAX_ERROR_SHARE = 0.01


def missing() -> str | None:
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk)"
    if shutil.which("docker-registry") is None:
        return "docker-registry is not installed (apt-get install docker-registry)"
    return None


def parse_wrk(output: str) -> tuple[float, int, int]:
    """(requests/s, total requests, non-2xx/3xx responses + socket errors) from wrk's report."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return rate, total, (int(bad.group(1)) if bad else 0) + errors


def _run(argv: list[str], timeout: float) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def wrk_get(ctx: Context, url: str, accept: str) -> tuple[float, int, int]:
    """GET ``url`` with wrk: (requests/s, requests, failures)."""
    settings = ctx.settings
    argv = ["wrk", "-t2", f"-c{settings.load_connections}", f"-d{settings.load_seconds}s", "-H", f"Accept: {accept}",
            url]
    return parse_wrk(_run(argv, settings.load_seconds + 60))


def loadgen_head(ctx: Context, url: str) -> tuple[float, int, int]:
    """HEAD ``url`` with the Python load generator (2 processes): (requests/s, requests, failures)."""
    settings = ctx.settings
    argv = [sys.executable, "-m", "benchmarks.loadgen", url, "--method", "HEAD", "--processes", "2",
            "--connections", str(settings.load_connections), "--seconds", str(settings.load_seconds)]
    result = json.loads(_run(argv, settings.load_seconds + 60).strip().splitlines()[-1])
    return result["rate"], result["requests"] + result["errors"], result["errors"]


def run_b6(ctx: Context) -> None:
    cases = {
        "manifest GET": lambda base, layer: wrk_get(ctx, f"{base}/v2/{REPO}/manifests/v1", OCI_MANIFEST),
        "blob HEAD": lambda base, layer: loadgen_head(ctx, f"{base}/v2/{REPO}/blobs/{layer}"),
    }
    kinds = ["dockyard", "distribution"]
    conns = ctx.settings.load_connections
    rows = {(case, kind): ctx.row("B6", f"{case}, {conns} connections", LOADGEN, server_label(kind), unit="req/s",
                                  dockyard=kind == "dockyard")
            for case in cases for kind in kinds}
    for round_ in range(ctx.settings.rounds):
        for kind in kinds[round_ % 2:] + kinds[: round_ % 2]:
            with ctx.server(kind) as server:
                image = make_image(layers=1, seed="load")
                push(image, server.url, REPO, tag="v1")
                layer = image.blobs[1].digest
                for case, load in cases.items():
                    row = rows[(case, kind)]
                    if row.status == "ok":
                        _measure(ctx, row, server, load, layer)


def _measure(ctx: Context, row: Row, server: Server, load: Callable[[str, str], tuple[float, int, int]],
             layer: str) -> None:
    pid = server.proc.pid  # type: ignore[union-attr]
    ctx.reset_server_peak(server)
    rss_before, _ = tree_memory_kib(pid)
    cpu = ctx.server_cpu(server)
    try:
        rate, total, bad = load(server.url, layer)
    except (RuntimeError, AttributeError, ValueError, subprocess.TimeoutExpired) as exc:
        row.fail(str(exc))
        return
    if total == 0 or bad / total > MAX_ERROR_SHARE:
        row.fail(f"{bad} of {total} requests failed")
        return
    rss_after, peak = tree_memory_kib(pid)
    row.add(rate, server_rss_kib=peak, server_cpu=ctx.server_cpu(server) - cpu)
    case = row.case.split(",")[0]
    row.notes[:] = [f"{case} on {row.server}: server RSS {rss_before / 1024:.0f} → {rss_after / 1024:.0f} MiB "
                    f"across {total:,} requests (last round)"]
