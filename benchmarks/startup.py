"""B9: CLI start-up and one metadata round trip, timed as whole processes.

``dockyard --version`` and ``dockyard --help`` against the bare interpreter (``python -c pass``);
``dockyard tag list REPO`` against ``python -c "import httpx; httpx.get(...)"`` (the interpreter, httpx and one
request: what any Python tool pays) and ``skopeo list-tags``, on ``dockyard serve`` without auth. Each round runs
every command :data:`REPEATS` times, the order rotated, and keeps the fastest run (start-up times are short and
a busy machine adds noise only upwards); the table shows the median of those over rounds.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx
from tests.support.images import make_image, push, put_manifest

from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, run_process
from benchmarks.results import Row

#: Runs per command and round; the fastest counts.
REPEATS = 5
REPO = "bench/startup"
TAGS = 20
PYTHON = "python -c pass"
VERSION = "dockyard --version"
HELP = "dockyard --help"
TAG_LIST = "dockyard tag list"
HTTPX_GET = "python: import httpx + one GET"
SKOPEO = "skopeo list-tags"
START_CASE = "CLI start-up"
ROUND_TRIP_CASE = f"list {TAGS} tags (one metadata round trip)"


def missing() -> str | None:
    """B9 needs the dockyard console script next to this interpreter (skopeo's row fails on its own)."""
    return None if _dockyard() else "the dockyard console script is not installed next to this interpreter"


def _dockyard() -> str | None:
    beside = Path(sys.executable).with_name("dockyard")
    return str(beside) if beside.exists() else shutil.which("dockyard")


def _seed(url: str) -> None:
    image = make_image(layers=1, seed="startup")
    with httpx.Client(timeout=60) as http:
        push(image, url, REPO, "t0", client=http)
        for i in range(1, TAGS):
            put_manifest(http, url, REPO, image, f"t{i}")


def run_b9(ctx: Context) -> None:
    dockyard = _dockyard() or "dockyard"
    start_rows = [ctx.row("B9", START_CASE, tool, "—", dockyard=tool == VERSION) for tool in (VERSION, HELP, PYTHON)]
    with ctx.server("dockyard") as server:
        _seed(server.url)
        trip_rows = [ctx.row("B9", ROUND_TRIP_CASE, tool, server_label("dockyard"), dockyard=tool == TAG_LIST)
                     for tool in (TAG_LIST, HTTPX_GET, SKOPEO)]
        url = f"{server.url}/v2/{REPO}/tags/list"
        commands = {
            PYTHON: [sys.executable, "-c", "pass"],
            VERSION: [dockyard, "--version"],
            HELP: [dockyard, "--help"],
            TAG_LIST: [dockyard, "--registry", server.url, "tag", "list", REPO],
            HTTPX_GET: [sys.executable, "-c", f"import httpx; httpx.get({url!r}).raise_for_status()"],
            SKOPEO: ["skopeo", "list-tags", "--tls-verify=false", f"docker://{server.host}/{REPO}"],
        }
        if shutil.which("skopeo") is None:
            trip_rows[-1].fail("skopeo is not installed")
        for _ in range(ctx.settings.rounds):
            best: dict[str, float] = {}
            cpu: dict[str, float] = {}
            rows = [r for r in (*start_rows, *trip_rows) if r.status == "ok"]
            for i in range(REPEATS):
                for row in rows[i % len(rows):] + rows[: i % len(rows)]:
                    if row.status != "ok":
                        continue
                    try:
                        run = run_process(commands[row.tool], ctx.logdir, timeout=60)
                    except RunFailed as exc:
                        row.fail(str(exc))
                        continue
                    if run.wall_seconds < best.get(row.tool, float("inf")):
                        best[row.tool], cpu[row.tool] = run.wall_seconds, run.cpu_seconds
            for row in rows:
                if row.status == "ok" and row.tool in best:
                    row.add(best[row.tool], client_cpu=cpu[row.tool])
    _note(start_rows, trip_rows)


def _note(start_rows: list[Row], trip_rows: list[Row]) -> None:
    for row in (*start_rows, *trip_rows):
        if row.status == "ok":
            row.notes.append(f"{row.case}: fastest of {REPEATS} runs per round, median over rounds")
            break
