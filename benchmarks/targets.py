"""The targets of the performance issue, checked against one run's medians (ratios from the same run)."""

from __future__ import annotations

from typing import Any

from benchmarks.results import Results, ratio
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
#: B13: bytes the upstream sends for concurrent cold pulls, as a multiple of the image (1x: one fetch per blob).
B13_MAX_UPSTREAM = 1.0
#: B2 verified download throughput, MB/s.
B2_MIN_MB_S = 1000.0
#: Client peak RSS for a large blob (B1, B2), MiB.
CLIENT_RSS_MIB = 150.0


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
    return out
