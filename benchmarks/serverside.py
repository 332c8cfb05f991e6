"""B8: what the server itself costs. CPU-seconds per GiB received and sent, and what token auth costs.

* **CPU per GiB.** ``curl`` (the lightest client there is, the same for both servers) uploads one blob in a
  monolithic ``PUT`` (``POST`` a session, then ``PUT ?digest=`` with the body streamed from the file) and downloads
  it again into ``/dev/null``. The server's process tree CPU time (``/proc/PID/stat``, all threads and workers) is
  read around each transfer and divided by the GiB moved: ``dockyard serve`` vs ``docker-registry``.
* **Auth cost.** ``wrk`` GETs the same small manifest by tag from two ``dockyard serve`` processes holding the same
  image: one without authentication, one with ``--htpasswd`` whose requests carry a pull-scoped bearer token from
  ``/oauth2/token``. The ratio (auth rate / no-auth rate) is the cost of verifying a token on every request.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
from tests.support.images import make_image, push
from tests.support.servers import DistributionServer, DockyardServer, write_htpasswd

from benchmarks.context import Context, server_label
from benchmarks.load import MAX_ERROR_SHARE, parse_wrk
from benchmarks.results import MIB, Row
from dockyard.oci.mediatypes import OCI_MANIFEST

Server = DockyardServer | DistributionServer

REPO = "bench/cpu"
LOAD_REPO = "bench/load"
GIB = 1024 * MIB
CURL = "curl"
#: The server label of the rows without authentication in the auth-cost case (the targets name it).
NO_AUTH = "dockyard serve, no auth"
TOKEN_AUTH = "dockyard serve, token auth"
USER, PASSWORD = "bench", "bench-password"


def missing() -> str | None:
    for program in ("curl", "wrk", "docker-registry"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install {program})"
    return None


def _curl(*args: str, timeout: float) -> str:
    proc = subprocess.run([CURL, "-sS", "-f", "--noproxy", "*", *args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"curl exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def _upload(ctx: Context, server: Server, path: Path, digest: str) -> None:
    """A monolithic upload with curl: ``POST`` a session, ``PUT`` the file to it with ``?digest=``."""
    started = httpx.post(f"{server.url}/v2/{REPO}/blobs/uploads/", timeout=30)
    started.raise_for_status()
    location = httpx.URL(server.url).join(started.headers["Location"])
    url = location.copy_merge_params({"digest": digest})
    _curl("-T", str(path), "-H", "Content-Type: application/octet-stream", "-H", "Expect:", "-o", "/dev/null",
          str(url), timeout=ctx.settings.timeout)


def _download(ctx: Context, server: Server, digest: str) -> None:
    _curl("-o", "/dev/null", f"{server.url}/v2/{REPO}/blobs/{digest}", timeout=ctx.settings.timeout)


def _cpu_rounds(ctx: Context, rows: dict[tuple[str, str], Row], path: Path, digest: str, size: int) -> None:
    kinds = ["dockyard", "distribution"]
    for round_ in range(ctx.settings.rounds):
        for kind in kinds[round_ % 2:] + kinds[: round_ % 2]:
            up, down = rows[("upload", kind)], rows[("download", kind)]
            if up.status != "ok" and down.status != "ok":
                continue
            with ctx.server(kind) as server:
                try:
                    before = ctx.server_cpu(server)
                    _upload(ctx, server, path, digest)
                    after = ctx.server_cpu(server)
                    up.add((after - before) * GIB / size, server_cpu=after - before,
                           server_rss_kib=ctx.server_peak_kib(server))
                    ctx.reset_server_peak(server)
                    before = ctx.server_cpu(server)
                    _download(ctx, server, digest)
                    after = ctx.server_cpu(server)
                    down.add((after - before) * GIB / size, server_cpu=after - before,
                             server_rss_kib=ctx.server_peak_kib(server))
                except (RuntimeError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
                    up.fail(str(exc))
                    down.fail(str(exc))


def _bearer(server: DockyardServer) -> str:
    """A pull-scoped access token for the load repository, from the server's token endpoint."""
    response = httpx.get(f"{server.url}/oauth2/token", auth=(USER, PASSWORD), timeout=30,
                         params={"service": server.host, "scope": f"repository:{LOAD_REPO}:pull"})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _wrk(ctx: Context, url: str, *headers: str) -> tuple[float, int, int]:
    settings = ctx.settings
    argv = ["wrk", "-t2", f"-c{settings.load_connections}", f"-d{settings.load_seconds}s",
            "-H", f"Accept: {OCI_MANIFEST}"]
    for header in headers:
        argv += ["-H", header]
    proc = subprocess.run([*argv, url], capture_output=True, text=True, timeout=settings.load_seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return parse_wrk(proc.stdout)


def _auth_rounds(ctx: Context, rows: dict[str, Row]) -> None:
    htpasswd = write_htpasswd(ctx.fresh_dir("htpasswd") / "htpasswd", {USER: PASSWORD})
    image = make_image(layers=1, seed="load")
    with ctx.server("dockyard") as plain, ctx.server("dockyard", "--htpasswd", str(htpasswd)) as guarded:
        push(image, plain.url, LOAD_REPO, tag="v1")
        push(image, guarded.url, LOAD_REPO, tag="v1", auth=(USER, PASSWORD))
        token = _bearer(guarded)  # type: ignore[arg-type]
        cases = {NO_AUTH: (plain, ()), TOKEN_AUTH: (guarded, (f"Authorization: Bearer {token}",))}
        order = [NO_AUTH, TOKEN_AUTH]
        for round_ in range(ctx.settings.rounds):
            for label in order[round_ % 2:] + order[: round_ % 2]:
                row = rows[label]
                if row.status != "ok":
                    continue
                server, headers = cases[label]
                before = ctx.server_cpu(server)
                try:
                    rate, total, bad = _wrk(ctx, f"{server.url}/v2/{LOAD_REPO}/manifests/v1", *headers)
                except (RuntimeError, AttributeError, subprocess.TimeoutExpired) as exc:
                    row.fail(str(exc))
                    continue
                if total == 0 or bad / total > MAX_ERROR_SHARE:
                    row.fail(f"{bad} of {total} requests failed")
                    continue
                row.add(rate, server_cpu=ctx.server_cpu(server) - before)


def run_b8(ctx: Context) -> None:
    path, digest = ctx.blob(ctx.settings.blob_size)
    size = ctx.settings.blob_size
    mib = size >> 20
    cpu_rows: dict[tuple[str, str], Row] = {}
    for direction, verb in (("upload", "received"), ("download", "sent")):
        case = f"server CPU-s per GiB {verb} ({mib} MiB blob, curl {direction})"
        for kind in ("dockyard", "distribution"):
            cpu_rows[(direction, kind)] = ctx.row("B8", case, CURL, server_label(kind), dockyard=kind == "dockyard")
    _cpu_rounds(ctx, cpu_rows, path, digest, size)
    conns = ctx.settings.load_connections
    case = f"manifest GET, {conns} connections, token auth vs none"
    auth_rows = {label: ctx.row("B8", case, "wrk", label, unit="req/s", dockyard=label == TOKEN_AUTH)
                 for label in (TOKEN_AUTH, NO_AUTH)}
    _auth_rounds(ctx, auth_rows)
