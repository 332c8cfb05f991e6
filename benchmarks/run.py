"""``python -m benchmarks.run [--quick] [--only B1,B2] [--rounds N]``: every benchmark, side by side with peers.

Prints a markdown table of medians, ratios and peak RSS, and writes it to ``benchmarks/results/latest.md``
(and ``latest.json``). Servers run on loopback on free ports and are stopped at the end; scratch data lives
in a temporary directory under /tmp that is removed afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import blobs, cache, gc_load, images, listing, load, replicas, serverside, startup, streams, tags
from benchmarks import sync as sync_bench
from benchmarks.context import Context, Settings
from benchmarks.measure import ROOT, cpu_load
from benchmarks.results import MIB, Results, render_markdown, write
from benchmarks.targets import evaluate
from benchmarks.tools import machine, versions

Benchmark = Callable[[Context], None]
#: Name -> (what it measures, precondition returning a reason it cannot run or None, runner).
BENCHMARKS: dict[str, tuple[str, Callable[[], str | None], Benchmark]] = {
    "B1": ("upload a blob: dockyard SDK vs azure-containerregistry vs oras-py", blobs.missing, blobs.run_b1),
    "B2": ("download+verify a blob: same three", blobs.missing, blobs.run_b2),
    "B3": ("OCI layout -> registry -> OCI layout: dockyard copy vs skopeo copy", images.b3_missing, images.run_b3),
    "B4": ("list tags with properties, auth on: dockyard vs azure-containerregistry", tags.missing, tags.run_b4),
    "B5": ("skopeo push+pull: dockyard serve vs docker-registry", images.b5_missing, images.run_b5),
    "B6": ("manifest GET / blob HEAD req/s under load: dockyard serve vs docker-registry", load.missing, load.run_b6),
    "B7": ("blob stream / file / upload paths vs the SHA-256 ceiling and azure-containerregistry", streams.missing,
           streams.run_b7),
    "B8": ("server CPU-s per GiB received/sent (vs docker-registry) and token auth cost (manifest GET rate)",
           serverside.missing, serverside.run_b8),
    "B9": ("CLI start-up and one metadata round trip: dockyard vs python -c pass, httpx, skopeo", startup.missing,
           startup.run_b9),
    "B10": ("skopeo push/pull + manifest GET rate: 1 replica on SQLite vs 1 and 2 replicas on PostgreSQL + S3 "
            "behind haproxy", replicas.missing, replicas.run_b10),
    "B11": ("list growth (1M tags, 100k repositories) + database round-trip cost: SQLite vs PostgreSQL",
            listing.missing, listing.run_b11),
    "B12": ("gc time vs blob count while a pusher runs, and the pusher's latency", gc_load.missing, gc_load.run_b12),
    "B13": ("pull-through cache: cold and warm skopeo pulls, upstream bytes of 16 concurrent cold pulls",
            cache.missing, cache.run_b13),
    "B14": ("sync many repositories into an empty registry: dockyard sync vs skopeo sync", sync_bench.missing,
            sync_bench.run_b14),
}
DEFAULT_RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(path: Path, table: str) -> None:
    """Replace what lies between the results markers in ``path`` with ``table``."""
    text = path.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{table}{END}{tail}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 1 round: a smoke test, not a result")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B2")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per benchmark (default 3, --quick 1)")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS, help="where latest.md/json go")
    parser.add_argument("--server-workers", type=int, default=2,
                        help="dockyard serve --workers N when supported (default 2; 1 = single process)")
    parser.add_argument("--blob-mib", type=int, default=None, help="B1/B2 blob size in MiB (default 1024)")
    parser.add_argument("--image-mib", type=int, default=None, help="B3/B5 image size in MiB (default 500)")
    parser.add_argument("--tags", type=int, default=None, help="B4 tag count (default 10000)")
    parser.add_argument("--update-readme", action="store_true",
                        help="also put the table into benchmarks/README.md (between the results markers)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the scratch directory (logs) afterwards")
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    names = [n.strip().upper() for n in only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = selected(args.only)
    settings = Settings.quick(args.rounds or 1) if args.quick else Settings.full(args.rounds or 3)
    settings.server_workers = args.server_workers
    if args.blob_mib:
        settings.blob_size = args.blob_mib * MIB
    if args.image_mib:
        settings.image_size = args.image_mib * MIB
    if args.tags:
        settings.tag_count = args.tags
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": settings.mode,
        "rounds": settings.rounds,
        "settings": vars(settings),
        "machine": machine(),
        "versions": versions(),
        "load_before": round(cpu_load(), 2),
        "benchmarks": names,
    }
    results = Results(meta=meta)
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir="/tmp"))
    ctx = Context(settings, workdir, results)
    meta["dockyard_serve_flags"] = " ".join(ctx.dockyard_flags) or "(none)"
    started = time.monotonic()
    serve_missing = None if ctx.serve_supports("--data-dir") else "`dockyard serve` is not available yet"
    try:
        for name in names:
            title, precondition, runner = BENCHMARKS[name]
            reason = serve_missing or precondition()
            if reason:
                results.not_run[name] = reason
                print(f"[{name}] not run: {reason}", file=sys.stderr, flush=True)
                continue
            print(f"[{name}] {title} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                runner(ctx)
            except Exception as exc:
                traceback.print_exc()
                failed = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                rows = [r for r in results.rows if r.bench == name]
                if any(r.values for r in rows):
                    for row in rows:
                        if not row.values:
                            row.fail(failed)
                else:
                    results.rows = [r for r in results.rows if r.bench != name]
                    results.not_run[name] = failed[:200]
            print(f"[{name}] done in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta["total_seconds"] = round(time.monotonic() - started)
    meta["load_after"] = round(cpu_load(), 2)
    results.extra_targets = evaluate(results)
    md, js = write(results, args.results_dir)
    if args.update_readme:
        update_readme(README, render_markdown(results))
    print(render_markdown(results))
    print(f"written: {md} {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
