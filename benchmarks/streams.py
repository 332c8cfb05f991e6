"""B7: every blob transfer path of the SDK against the single-core SHA-256 ceiling on the same bytes and against
azure-containerregistry, without auth and with auth on (the ACR token flow, as in B1/B2).

Download: the seed document's loop (``for chunk in client.download_blob(...)`` into a file; sync and
``dockyard.aio``), ``download_blob_to_file``, azure-containerregistry's ``download_blob`` loop, and the
SHA-256 ceiling (one core hashing the same bytes from memory). Upload: ``upload_blob`` from a path and from an
open file, azure-containerregistry's ``upload_blob`` (a fresh server per upload). "CPU s client" is the CPU the
client process spent on the transfer itself (all its threads; start-up and imports excluded), so it compares
with the ceiling's CPU per GiB. Client processes: :mod:`benchmarks.stream_clients`.

Every download row starts from the same memory (:mod:`benchmarks.recycle`): on a VM that hands free memory back to its
host, a file written into such memory costs ~5x the CPU, and which rows met it depended on the row before them.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import httpx
from tests.support.images import upload_blob
from tests.support.servers import DistributionServer, DockyardServer

from benchmarks.blobs import USER, VARIANTS, Variant, _server_flags
from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, run_python_client
from benchmarks.recycle import fill as recycle_memory
from benchmarks.results import Row
from benchmarks.tools import AZURE

STREAM = "dockyard SDK stream"
STREAM_AIO = "dockyard aio stream"
TO_FILE = "dockyard SDK download_blob_to_file"
AZURE_STREAM = f"{AZURE} stream"
SHA256 = "SHA-256, one core (ceiling)"
UPLOAD_PATH = "dockyard SDK upload_blob(path)"
UPLOAD_STREAM = "dockyard SDK upload_blob(open file)"
AZURE_UPLOAD = f"{AZURE} upload_blob(open file)"

_DOWNLOADS = {STREAM: "stream_dockyard", STREAM_AIO: "stream_dockyard_aio", TO_FILE: "file_dockyard",
              AZURE_STREAM: "stream_azure"}
_UPLOADS = {UPLOAD_PATH: "upload_path_dockyard", UPLOAD_STREAM: "upload_stream_dockyard", AZURE_UPLOAD: "upload_azure"}
_MODULE = "benchmarks.stream_clients"


def missing() -> str | None:
    """B7 runs whenever the server starts; a client that is missing fails its own row."""
    return None


def download_case(size: int, variant: Variant) -> str:
    return f"download {size >> 20} MiB blob, {variant.label}"


def upload_case(size: int, variant: Variant) -> str:
    return f"upload {size >> 20} MiB blob, {variant.label}"


def run_b7(ctx: Context) -> None:
    path, digest = ctx.blob(ctx.settings.blob_size)
    size = ctx.settings.blob_size
    for variant in VARIANTS:
        _downloads(ctx, variant, path, digest, size)
        _uploads(ctx, variant, path, digest, size)


def _row(ctx: Context, case: str, tool: str, size: int, baseline: str) -> Row:
    return ctx.row("B7", case, tool, server_label("dockyard") if tool != SHA256 else "—", dockyard=tool == baseline,
                   nbytes=size)


def _downloads(ctx: Context, variant: Variant, path: Path, digest: str, size: int) -> None:
    case = download_case(size, variant)
    rows = [_row(ctx, case, tool, size, STREAM) for tool in (*_DOWNLOADS, SHA256)]
    repo = "bench/stream"
    scratch = ctx.fresh_dir("stream")
    out, recycle = scratch / "blob.out", scratch / "recycle.bin"
    writes: dict[str, list[float]] = {}
    with ctx.server("dockyard", *_server_flags(ctx, variant)) as server:
        with httpx.Client(timeout=600, auth=USER if variant.auth else None) as http, path.open("rb") as data:
            upload_blob(http, server.url, repo, data, digest)  # type: ignore[arg-type]
        for row in ctx.rotations(rows):
            if row.tool == SHA256:
                _measure(ctx, row, None, "sha256_ceiling", path=str(path))
                continue
            try:
                recycle_memory(recycle, size)
                extra = _measure(ctx, row, server, _DOWNLOADS[row.tool], url=server.url, repo=repo, digest=digest,
                                 out=str(out), auth=variant.auth, recycle=str(recycle))
                if extra is not None and "write_cpu" in extra:
                    writes.setdefault(row.tool, []).append(float(extra["write_cpu"]))  # type: ignore[arg-type]
                actual = out.stat().st_size if out.exists() else -1
                if actual != size and row.status == "ok":
                    row.fail(f"downloaded file has {actual} bytes, expected {size}")
            finally:
                out.unlink(missing_ok=True)
                recycle.unlink(missing_ok=True)
    for row in rows:
        if writes.get(row.tool) and row.status == "ok":
            row.notes.append(_write_note(writes[row.tool], row, size))


def _write_note(write_cpu: list[float], row: Row, size: int) -> str:
    """How much of a stream loop's client CPU its own ``write`` calls into the output file took: the page-cache
    copy, ~0.2 CPU-s/GiB into memory the kernel has at hand, ~5x that into memory the VM had handed back to its
    host (see README, "This round's run"); azure-containerregistry's loop pays per call (4 KiB chunks)."""
    gib = size / (1 << 30)
    per_gib = sorted(value / gib for value in write_cpu)
    client = statistics.median(row.client_cpu) / gib if row.client_cpu else 0.0
    rest = statistics.median(c - w for c, w in zip(row.client_cpu, write_cpu, strict=False)) / gib
    return (f"{row.case}: the loop's own file writes took {statistics.median(per_gib):.2f} "
            f"({per_gib[0]:.2f}-{per_gib[-1]:.2f}) of the client's {client:.2f} CPU-s/GiB; "
            f"the rest {rest:.2f} CPU-s/GiB")


def _uploads(ctx: Context, variant: Variant, path: Path, digest: str, size: int) -> None:
    rows = [_row(ctx, upload_case(size, variant), tool, size, UPLOAD_PATH) for tool in _UPLOADS]
    for row in ctx.rotations(rows):
        with ctx.server("dockyard", *_server_flags(ctx, variant)) as server:
            extra = _measure(ctx, row, server, _UPLOADS[row.tool], url=server.url, repo="bench/upload",
                             path=str(path), auth=variant.auth)
            if extra is not None and extra.get("digest") != digest:
                row.fail(f"uploaded digest {extra.get('digest')}, expected {digest}")


def _measure(ctx: Context, row: Row, server: DockyardServer | DistributionServer | None, function: str,
             **kwargs: object) -> dict[str, object] | None:
    """Run one client process for ``row`` and record its time, transfer CPU and the server's CPU meanwhile."""
    if server is not None:
        ctx.reset_server_peak(server)
    before = ctx.server_cpu(server) if server is not None else 0.0
    try:
        run = run_python_client(f"{_MODULE}:{function}", ctx.logdir, timeout=ctx.settings.timeout, **kwargs)
    except RunFailed as exc:
        row.fail(str(exc))
        return None
    server_cpu = ctx.server_cpu(server) - before if server is not None else None
    row.add(run.seconds, client_rss_kib=run.peak_rss_kib,
            server_rss_kib=ctx.server_peak_kib(server) if server is not None else None,
            client_cpu=float(run.extra.get("cpu", run.cpu_seconds)), server_cpu=server_cpu)
    return run.extra
