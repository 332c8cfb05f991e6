"""B1 upload and B2 download-and-verify of one large blob: dockyard SDK vs azure-containerregistry vs oras-py.

All three talk to ``dockyard serve`` (no auth). Each client runs in its own process per round
(:mod:`benchmarks.blob_clients`).
"""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.support.images import upload_blob

from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, run_python_client
from benchmarks.results import Row
from benchmarks.tools import AZURE, DOCKYARD_SDK, ORAS

_UPLOADS = {DOCKYARD_SDK: "upload_dockyard", AZURE: "upload_azure", ORAS: "upload_oras"}
_DOWNLOADS = {DOCKYARD_SDK: "download_dockyard", AZURE: "download_azure", ORAS: "download_oras"}


def missing() -> str | None:
    """B1 and B2 run whenever the server starts; a client that is missing fails its own row."""
    return None


def _kwargs(tool: str, server_url: str, server_host: str) -> dict[str, str]:
    return {"host": server_host} if tool == ORAS else {"url": server_url}


def run_b1(ctx: Context) -> None:
    """B1: upload a blob; a fresh server per upload so nothing is already there."""
    path, digest = ctx.blob(ctx.settings.blob_size)
    size = ctx.settings.blob_size
    rows = [ctx.row("B1", f"upload {size >> 20} MiB blob", tool, server_label("dockyard"),
                    dockyard=tool == DOCKYARD_SDK, nbytes=size) for tool in _UPLOADS]
    for row in ctx.rotations(rows):
        with ctx.server("dockyard") as server:
            repo = "bench/upload"
            cpu = ctx.server_cpu(server)
            try:
                run = run_python_client(f"benchmarks.blob_clients:{_UPLOADS[row.tool]}", ctx.logdir,
                                        timeout=ctx.settings.timeout, repo=repo, path=str(path),
                                        **_kwargs(row.tool, server.url, server.host))
            except RunFailed as exc:
                row.fail(str(exc))
                continue
            cpu = ctx.server_cpu(server) - cpu
            head = httpx.head(f"{server.url}/v2/{repo}/blobs/{digest}", timeout=60)
            stored = int(head.headers.get("Content-Length", -1)) if head.status_code == 200 else None
            if run.extra.get("digest") != digest or stored != size:
                row.fail(f"upload not stored correctly (digest {run.extra.get('digest')}, size {stored})")
                continue
            row.add(run.seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(server),
                    client_cpu=run.cpu_seconds, server_cpu=cpu)


def run_b2(ctx: Context) -> None:
    """B2: download a blob to a file and verify its digest; one server, the blob seeded once."""
    path, digest = ctx.blob(ctx.settings.blob_size)
    size = ctx.settings.blob_size
    rows = [ctx.row("B2", f"download+verify {size >> 20} MiB blob", tool, server_label("dockyard"),
                    dockyard=tool == DOCKYARD_SDK, nbytes=size) for tool in _DOWNLOADS]
    repo = "bench/download"
    with ctx.server("dockyard") as server:
        with httpx.Client(timeout=600) as http, path.open("rb") as data:
            # httpx streams a file object in chunks (a bytes body of this size is several times slower to send).
            upload_blob(http, server.url, repo, data, digest)  # type: ignore[arg-type]
        out = ctx.fresh_dir("download") / "blob.out"
        for row in ctx.rotations(rows):
            ctx.reset_server_peak(server)
            cpu = ctx.server_cpu(server)
            try:
                run = run_python_client(f"benchmarks.blob_clients:{_DOWNLOADS[row.tool]}", ctx.logdir,
                                        timeout=ctx.settings.timeout, repo=repo, digest=digest, out=str(out),
                                        **_kwargs(row.tool, server.url, server.host))
                _check_download(row, out, size)
            except RunFailed as exc:
                row.fail(str(exc))
                continue
            finally:
                out.unlink(missing_ok=True)
            if row.status == "ok":
                row.add(run.seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(server),
                        client_cpu=run.cpu_seconds, server_cpu=ctx.server_cpu(server) - cpu)


def _check_download(row: Row, out: Path, size: int) -> None:
    """The client verified the digest itself; make sure the whole file landed too."""
    actual = out.stat().st_size if out.exists() else -1
    if actual != size:
        row.fail(f"downloaded file has {actual} bytes, expected {size}")
