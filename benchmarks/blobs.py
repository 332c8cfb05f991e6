"""B1 upload and B2 download-and-verify of one large blob: dockyard SDK vs azure-containerregistry vs oras-py.

All talk to ``dockyard serve``: without auth (all three), and with auth on as ACR has it (``--htpasswd``,
``--accept-any-aad-token``; dockyard and azure-containerregistry with an Entra-ID-style stand-in credential). Each
client runs in its own process per round (:mod:`benchmarks.blob_clients`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.support.images import upload_blob
from tests.support.servers import DistributionServer, DockyardServer, write_htpasswd

from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, run_python_client
from benchmarks.recycle import fill as recycle_memory
from benchmarks.results import Row
from benchmarks.tools import AZURE, DOCKYARD_SDK, ORAS

_UPLOADS = {DOCKYARD_SDK: "upload_dockyard", AZURE: "upload_azure", ORAS: "upload_oras"}
_DOWNLOADS = {DOCKYARD_SDK: "download_dockyard", AZURE: "download_azure", ORAS: "download_oras"}


def missing() -> str | None:
    """B1 and B2 run whenever the server starts; a client that is missing fails its own row."""
    return None


@dataclass(frozen=True)
class Variant:
    """How the server runs and who takes part: without auth (all three clients) or with the ACR token flow."""

    label: str
    auth: bool
    tools: tuple[str, ...]


VARIANTS = (
    Variant("no auth", False, (DOCKYARD_SDK, AZURE, ORAS)),
    # oras-py is left out with auth on: its token flow reuses the pull-scoped token of its blob HEAD for the push.
    Variant("auth on, Entra ID stand-in", True, (DOCKYARD_SDK, AZURE)),
)
USER = ("bench", "bench-pass")


def _kwargs(tool: str, server: DockyardServer | DistributionServer, auth: bool) -> dict[str, Any]:
    if tool == ORAS:
        return {"host": server.host}
    return {"url": server.url, "auth": auth}


def _server_flags(ctx: Context, variant: Variant) -> list[str]:
    if not variant.auth:
        return []
    htpasswd = ctx.workdir / "blob-htpasswd"
    if not htpasswd.exists():
        write_htpasswd(htpasswd, {USER[0]: USER[1]})
    return ["--htpasswd", str(htpasswd), "--accept-any-aad-token"]


def run_b1(ctx: Context) -> None:
    """B1: upload a blob; a fresh server per upload so nothing is already there."""
    path, digest = ctx.blob(ctx.settings.blob_size)
    size = ctx.settings.blob_size
    for variant in VARIANTS:
        rows = [ctx.row("B1", f"upload {size >> 20} MiB blob, {variant.label}", tool, server_label("dockyard"),
                        dockyard=tool == DOCKYARD_SDK, nbytes=size) for tool in variant.tools]
        for row in ctx.rotations(rows):
            with ctx.server("dockyard", *_server_flags(ctx, variant), access_log=True) as server:
                _upload(ctx, row, server, variant, path, digest, size)


def _upload(ctx: Context, row: Row, server: DockyardServer | DistributionServer, variant: Variant, path: Path,
            digest: str, size: int) -> None:
    repo = "bench/upload"
    cpu, requests = ctx.server_cpu(server), ctx.request_count(server)
    try:
        run = run_python_client(f"benchmarks.blob_clients:{_UPLOADS[row.tool]}", ctx.logdir,
                                timeout=ctx.settings.timeout, repo=repo, path=str(path),
                                **_kwargs(row.tool, server, variant.auth))
    except RunFailed as exc:
        row.fail(str(exc))
        return
    cpu = ctx.server_cpu(server) - cpu
    _note_requests(row, requests, ctx.request_count(server))
    head = httpx.head(f"{server.url}/v2/{repo}/blobs/{digest}", auth=USER if variant.auth else None, timeout=60)
    stored = int(head.headers.get("Content-Length", -1)) if head.status_code == 200 else None
    if run.extra.get("digest") != digest or stored != size:
        row.fail(f"upload not stored correctly (digest {run.extra.get('digest')}, size {stored})")
        return
    row.add(run.seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(server),
            client_cpu=run.cpu_seconds, server_cpu=cpu)


def run_b2(ctx: Context) -> None:
    """B2: download a blob to a file and verify its digest; one server per variant, the blob seeded once."""
    path, digest = ctx.blob(ctx.settings.blob_size)
    size = ctx.settings.blob_size
    repo = "bench/download"
    for variant in VARIANTS:
        rows = [ctx.row("B2", f"download+verify {size >> 20} MiB blob, {variant.label}", tool,
                        server_label("dockyard"), dockyard=tool == DOCKYARD_SDK, nbytes=size)
                for tool in variant.tools]
        with ctx.server("dockyard", *_server_flags(ctx, variant), access_log=True) as server:
            auth = USER if variant.auth else None
            with httpx.Client(timeout=600, auth=auth) as http, path.open("rb") as data:
                # httpx streams a file object in chunks (a bytes body of this size is several times slower to send).
                upload_blob(http, server.url, repo, data, digest)  # type: ignore[arg-type]
            scratch = ctx.fresh_dir("download")
            for row in ctx.rotations(rows):
                _download(ctx, row, server, variant, repo, digest, scratch, size)


def _download(ctx: Context, row: Row, server: DockyardServer | DistributionServer, variant: Variant, repo: str,
              digest: str, scratch: Path, size: int) -> None:
    """One timed download into ``scratch``, from the same memory as every other row (:mod:`benchmarks.recycle`)."""
    out, recycle = scratch / "blob.out", scratch / "recycle.bin"
    recycle_memory(recycle, size)
    ctx.reset_server_peak(server)
    cpu, requests = ctx.server_cpu(server), ctx.request_count(server)
    try:
        run = run_python_client(f"benchmarks.blob_clients:{_DOWNLOADS[row.tool]}", ctx.logdir,
                                timeout=ctx.settings.timeout, repo=repo, digest=digest, out=str(out),
                                recycle=str(recycle), **_kwargs(row.tool, server, variant.auth))
        _check_download(row, out, size)
    except RunFailed as exc:
        row.fail(str(exc))
        return
    finally:
        out.unlink(missing_ok=True)
        recycle.unlink(missing_ok=True)
    if row.status == "ok":
        row.add(run.seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(server),
                client_cpu=run.cpu_seconds, server_cpu=ctx.server_cpu(server) - cpu)
        _note_requests(row, requests, ctx.request_count(server))


def _note_requests(row: Row, before: int | None, after: int | None) -> None:
    """Record how many HTTP requests one transfer took (the same every round; the first round's count is kept)."""
    if before is not None and after is not None and not row.notes:
        row.notes.append(f"{row.case.split(', ', 1)[1]}: {after - before} HTTP requests per transfer")


def _check_download(row: Row, out: Path, size: int) -> None:
    """The client verified the digest itself; make sure the whole file landed too."""
    actual = out.stat().st_size if out.exists() else -1
    if actual != size:
        row.fail(f"downloaded file has {actual} bytes, expected {size}")
