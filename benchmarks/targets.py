"""The targets of the performance issue, checked against one run's medians (ratios from the same run)."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import cache, startup, streams
from benchmarks.results import MIB, Results, Row, ratio
from benchmarks.serverside import NO_AUTH
from benchmarks.tools import AZURE, ORAS, SKOPEO

#: (bench, peer tool, minimum dockyard advantage): advantage = peer time / dockyard time, or rate / rate.
RATIO_TARGETS: list[tuple[str, str, float]] = [
    ("B1", AZURE, 4.0),
    ("B1", ORAS, 2.0),
    ("B2", AZURE, 4.0),
    ("B2", ORAS, 2.0),
    ("B3", SKOPEO, 1.0),
    ("B4", AZURE, 4.0),
    ("B5", "docker-registry", 1.0),
    ("B6", "docker-registry", 0.5),
    # Token auth on: the manifest GET rate is at least 0.8x the rate without auth (the row's server is its label).
    ("B8", NO_AUTH, 0.8),
    # B13: a cold pull through the cache within 1.2x a direct pull, a warm one within 1.05x a plain dockyard pull.
    ("B13", "docker-registry (direct)", 1 / 1.2),
    ("B13", "dockyard serve (plain)", 1 / 1.05),
    ("B14", "skopeo sync", 1.0),
]
#: (bench, peer server): dockyard against the peer, reported with no target. B13: the cold pull through nginx
#: in front of the same upstream, the ceiling a C proxy reaches on the same shared cores.
REPORTED_RATIOS: list[tuple[str, str]] = [
    ("B13", cache.NGINX_CACHE),
    ("B13", cache.NGINX_PASS),
]
#: B13: bytes the upstream sends for concurrent cold pulls, as a multiple of the image (1x: one fetch per blob).
B13_MAX_UPSTREAM = 1.0
#: B2 verified download throughput, MB/s.
B2_MIN_MB_S = 1000.0
#: Client peak RSS for a large blob (B1, B2), MiB.
CLIENT_RSS_MIB = 150.0
#: B7: downloads reach this share of the single-core SHA-256 rate, uploads the next; both this many times
#: azure-containerregistry's rate; the stream is at most this much slower than the file path; the client's
#: CPU per GiB is at most this many times the hash's.
B7_DOWNLOAD_OF_SHA = 0.70
B7_UPLOAD_OF_SHA = 0.50
B7_VS_AZURE = 4.0
B7_STREAM_VS_FILE = 1.10
B7_CPU_VS_HASH = 1.5
#: B9: ``--help``/``--version`` at most this many times ``python -c pass``; ``tag list`` at most this many times
#: the interpreter + httpx + one request.
B9_START_VS_PYTHON = 5.0
B9_TAG_LIST_VS_HTTPX = 1.5


def _entry(label: str, measured: str, met: bool | None) -> dict[str, Any]:
    return {"label": label, "measured": measured, "met": met}


def evaluate(results: Results) -> list[dict[str, Any]]:
    """One entry per target and case: label, what was measured, met (None when not measured)."""
    out: list[dict[str, Any]] = []
    for bench, peer_tool, at_least in RATIO_TARGETS:
        peers = [r for r in results.rows if r.bench == bench and r.tool == peer_tool and not r.dockyard]
        peers += [r for r in results.rows if r.bench == bench and r.server == peer_tool and not r.dockyard]
        if not peers:
            if any(r.bench == bench for r in results.rows) or bench in results.not_run:
                out.append(_entry(f"{bench}: dockyard ≥ {at_least:g}x {peer_tool}", "not measured", None))
            continue
        for peer in peers:
            base = results.dockyard_row(peer.bench, peer.case)
            value = ratio(base, peer) if base is not None else None
            label = f"{bench} {peer.case}: dockyard ≥ {at_least:g}x {peer_tool}"
            out.append(_entry(label, "not measured" if value is None else f"{value:.2f}x",
                              None if value is None else value >= at_least))
    for bench, peer_server in REPORTED_RATIOS:
        for peer in (r for r in results.rows if r.bench == bench and r.server == peer_server and not r.dockyard):
            base = results.dockyard_row(peer.bench, peer.case)
            value = ratio(base, peer) if base is not None else None
            label = f"{bench} {peer.case}: dockyard vs {peer_server}, its time / dockyard's (reported, no target)"
            out.append(_entry(label, "not measured" if value is None else f"{value:.2f}x", None))
    for row in results.rows:
        if row.bench == "B2" and row.dockyard:
            tput = row.throughput_mb_s()
            out.append(_entry(f"B2 {row.case}: dockyard verified download ≥ {B2_MIN_MB_S:,.0f} MB/s",
                              "not measured" if tput is None else f"{tput:,.0f} MB/s",
                              None if tput is None else tput >= B2_MIN_MB_S))
        if row.bench == "B13" and row.unit == "x":
            median = row.median
            out.append(_entry(f"B13 {row.case}: upstream bytes ≤ {B13_MAX_UPSTREAM:g}x the image",
                              "not measured" if median is None else f"{median:.2f}x",
                              None if median is None else median <= B13_MAX_UPSTREAM + 0.005))
        if row.bench in ("B1", "B2") and row.dockyard:
            rss = row.client_rss_kib
            out.append(_entry(f"{row.bench} {row.case}: dockyard client peak RSS < {CLIENT_RSS_MIB:g} MiB",
                              "not measured" if rss is None or row.median is None else f"{rss / 1024:.0f} MiB",
                              None if rss is None or row.median is None else rss / 1024 < CLIENT_RSS_MIB))
    return out + evaluate_b7(results) + evaluate_b9(results)


def _rate(row: Row | None) -> float | None:
    return None if row is None else row.throughput_mb_s()


def _cpu_per_gib(row: Row | None) -> float | None:
    if row is None or row.median is None or not row.client_cpu or not row.nbytes:
        return None
    return statistics.median(row.client_cpu) / (row.nbytes / (1024 * MIB))


def _compare(label: str, value: float | None, fmt: str, met: bool | None) -> dict[str, Any]:
    return _entry(label, "not measured" if value is None else fmt.format(value), None if value is None else met)


def evaluate_b7(results: Results) -> list[dict[str, Any]]:
    """B7: each path against the SHA-256 ceiling and azure-containerregistry of the same case, CPU per GiB
    against the hash's, the stream against the file path."""
    out: list[dict[str, Any]] = []
    cases = sorted({(r.case, r.case.split(" ", 1)[0]) for r in results.rows if r.bench == "B7"})
    sha_rows = {r.case.split(", ", 1)[1]: r for r in results.rows if r.bench == "B7" and r.tool == streams.SHA256}
    for case, kind in cases:
        variant = case.split(", ", 1)[1]
        sha = sha_rows.get(variant)
        sha_rate, sha_cpu = _rate(sha), _cpu_per_gib(sha)
        download = kind == "download"
        mine = (streams.STREAM, streams.STREAM_AIO, streams.TO_FILE) if download else (streams.UPLOAD_PATH,
                                                                                      streams.UPLOAD_STREAM)
        peer = results.find("B7", case, streams.AZURE_STREAM if download else streams.AZURE_UPLOAD)
        share = B7_DOWNLOAD_OF_SHA if download else B7_UPLOAD_OF_SHA
        for tool in mine:
            row = results.find("B7", case, tool)
            rate = _rate(row)
            of_sha = rate / sha_rate if rate and sha_rate else None
            out.append(_compare(f"B7 {case}: {tool} ≥ {share:.0%} of the SHA-256 rate", of_sha, "{:.0%}",
                                of_sha is not None and of_sha >= share))
            vs_peer = ratio(row, peer) if row is not None and peer is not None else None
            out.append(_compare(f"B7 {case}: {tool} ≥ {B7_VS_AZURE:g}x {AZURE}", vs_peer, "{:.2f}x",
                                vs_peer is not None and vs_peer >= B7_VS_AZURE))
            cpu = _cpu_per_gib(row)
            of_hash = cpu / sha_cpu if cpu and sha_cpu else None
            out.append(_compare(f"B7 {case}: {tool} client CPU per GiB ≤ {B7_CPU_VS_HASH:g}x hashing's",
                                of_hash, "{:.2f}x" + f" ({cpu or 0:.2f} vs {sha_cpu or 0:.2f} CPU-s/GiB)",
                                of_hash is not None and of_hash <= B7_CPU_VS_HASH))
        if download:
            stream, to_file = results.find("B7", case, streams.STREAM), results.find("B7", case, streams.TO_FILE)
            slower = stream.median / to_file.median if stream and to_file and stream.median and to_file.median \
                else None
            out.append(_compare(f"B7 {case}: stream time ≤ {B7_STREAM_VS_FILE:g}x the file path's", slower,
                                "{:.2f}x", slower is not None and slower <= B7_STREAM_VS_FILE))
    return out


def evaluate_b9(results: Results) -> list[dict[str, Any]]:
    """B9: start-up against the bare interpreter; ``tag list`` against httpx + one request (and skopeo, told)."""
    out: list[dict[str, Any]] = []

    def median(case: str, tool: str) -> float | None:
        row = results.find("B9", case, tool)
        return None if row is None else row.median

    python = median(startup.START_CASE, startup.PYTHON)
    for tool in (startup.VERSION, startup.HELP):
        mine = median(startup.START_CASE, tool)
        times = mine / python if mine and python else None
        out.append(_compare(f"B9 {tool} ≤ {B9_START_VS_PYTHON:g}x {startup.PYTHON}", times, "{:.1f}x",
                            times is not None and times <= B9_START_VS_PYTHON))
    tags = median(startup.ROUND_TRIP_CASE, startup.TAG_LIST)
    httpx_get = median(startup.ROUND_TRIP_CASE, startup.HTTPX_GET)
    times = tags / httpx_get if tags and httpx_get else None
    out.append(_compare(f"B9 {startup.TAG_LIST} ≤ {B9_TAG_LIST_VS_HTTPX:g}x {startup.HTTPX_GET}", times, "{:.2f}x",
                        times is not None and times <= B9_TAG_LIST_VS_HTTPX))
    skopeo = median(startup.ROUND_TRIP_CASE, startup.SKOPEO)
    times = tags / skopeo if tags and skopeo else None
    out.append(_entry(f"B9 {startup.TAG_LIST} / {startup.SKOPEO} (reported, no target)",
                      "not measured" if times is None else f"{times:.2f}x", None))
    return out
