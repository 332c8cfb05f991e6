"""The benchmark harness still runs end to end: B1 on tiny sizes, one round, every client measured.

No timing assertions: this only keeps ``python -m benchmarks.run`` from rotting.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.images import upload_blob
from tests.support.peers import require_module
from tests.support.servers import DockyardServer, subprocess_env

ROOT = Path(__file__).resolve().parent.parent


def test_quick_b1_measures_every_client(tmp_path: Path) -> None:
    require_module("azure.containerregistry", "azure-containerregistry")
    require_module("oras", "oras")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "B1", "--results-dir", str(tmp_path)],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    rows = [row for row in data["rows"] if row["bench"] == "B1"]
    assert {row["tool"] for row in rows} == {"dockyard SDK", "azure-containerregistry", "oras-py"}
    assert len({row["case"] for row in rows}) == 2  # without and with auth
    for row in rows:
        assert row["status"] == "ok", (row["case"], row["tool"], row["status"], proc.stderr[-3000:])
        assert len(row["values"]) == 1 and row["values"][0] > 0
        assert row["client_rss_kib"] > 0 and row["server_rss_kib"] > 0
        assert len(row["client_cpu"]) == 1 and len(row["server_cpu"]) == 1
        assert row["dockyard"] or row["dockyard_advantage"] is not None
    assert data["meta"]["machine"]["nproc"]
    table = (tmp_path / "latest.md").read_text()
    assert "| B1 |" in table and "dockyard SDK" in table
    assert "| B1 |" in proc.stdout


def test_wrk_report_parsing_and_ratios() -> None:
    from benchmarks.load import parse_wrk
    from benchmarks.results import Row, ratio

    report = (
        "Running 2s test @ http://127.0.0.1:1/v2/\n  2 threads and 8 connections\n"
        "  4644 requests in 2.00s, 1.2MB read\n  Non-2xx or 3xx responses: 3\n"
        "Requests/sec:   2322.10\nTransfer/sec:    600.00KB\n"
    )
    assert parse_wrk(report) == (2322.10, 4644, 3)
    fast = Row("B1", "c", "dockyard SDK", "s", dockyard=True, values=[1.0, 2.0, 3.0])
    slow = Row("B1", "c", "peer", "s", values=[8.0])
    assert ratio(fast, slow) == 4.0
    busy = Row("B6", "c", "x", "s", unit="req/s", dockyard=True, values=[500.0])
    idle = Row("B6", "c", "x", "s", unit="req/s", values=[1000.0])
    assert ratio(busy, idle) == 0.5


def test_b11_seeded_listings_page_where_the_benchmark_expects(tmp_path: Path) -> None:
    """B11's bulk seed writes what ``dockyard serve`` lists: every listing's first, middle and last page holds a
    full page where the benchmark's cursors put it (a wrong cursor would list fewer entries or none)."""
    import httpx
    from benchmarks.listing import LISTINGS, LOAD_REPO, POSITIONS, _page_ms
    from benchmarks.seed import seed

    from dockyard.server.storage.schema import sqlite_url
    from tests.support.images import make_image, push
    from tests.support.servers import DockyardServer

    image = make_image(layers=1, seed="b11-smoke")
    url = sqlite_url(tmp_path / "meta" / "metadata.db")
    seeded = seed(url, tag_count=1_000, repository_count=300, manifest=(image.digest, image.media_type, image.body))
    with DockyardServer(tmp_path / "srv", "--metadata-url", url) as server:
        push(make_image(layers=1, seed="b11-smoke-load"), server.url, LOAD_REPO, tag="v1")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for listing in LISTINGS:
                for position in POSITIONS:
                    assert _page_ms(client, listing, seeded, position, gets=1) > 0
            last = client.get(f"/v2/{seeded.tag_repository}/tags/list", params={"n": 100, "last": "t0000899"})
            assert last.json()["tags"][-1] == "t0000999" and "Link" not in last.headers
            oldest = client.get(f"/acr/v1/{seeded.tag_repository}/_tags", params={"n": 1, "orderby": "timeasc"})
            assert oldest.json()["tags"][0]["name"] == seeded.tag_at_time_rank(0)


def test_b7_stream_loops_report_the_cpu_of_their_own_file_writes(tmp_path: Path, files_server: DockyardServer) -> None:
    """B7 separates the caller's page-cache writes from the SDK's CPU (they swing tenfold between rounds on a VM
    that hands free memory back to its host); the written file is still the whole blob."""
    from benchmarks.stream_clients import stream_dockyard, stream_dockyard_aio

    data = os.urandom(3 * 1024 * 1024 + 12345)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    with httpx.Client(timeout=60) as http:
        upload_blob(http, files_server.url, "bench/write-cpu", data, digest)
    for client in (stream_dockyard, stream_dockyard_aio):
        out = tmp_path / f"{client.__name__}.out"
        result = client(url=files_server.url, repo="bench/write-cpu", digest=digest, out=str(out))
        assert out.read_bytes() == data
        assert 0.0 <= result["write_cpu"] <= result["cpu"]
