"""Benchmark results: rows per (benchmark, case, tool), medians, ratios against dockyard, targets, markdown + JSON."""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


@dataclass
class Row:
    """All rounds of one tool in one benchmark case.

    ``unit`` is ``"s"`` or ``"ms"`` (lower is better) or ``"req/s"`` (higher is better). ``dockyard`` marks the row the
    others are compared with. ``nbytes`` (when set) turns a time into a throughput.
    """

    bench: str
    case: str
    tool: str
    server: str
    unit: str = "s"
    dockyard: bool = False
    nbytes: int | None = None
    values: list[float] = field(default_factory=list)
    client_rss_kib: int | None = None
    server_rss_kib: int | None = None
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    status: str = "ok"
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values and self.status == "ok" else None

    def add(self, value: float, *, client_rss_kib: int | None = None, server_rss_kib: int | None = None,
            client_cpu: float | None = None, server_cpu: float | None = None) -> None:
        """Record one round; RSS keeps the maximum seen, CPU seconds one value per round."""
        self.values.append(value)
        if client_cpu is not None:
            self.client_cpu.append(client_cpu)
        if server_cpu is not None:
            self.server_cpu.append(server_cpu)
        if client_rss_kib is not None:
            self.client_rss_kib = max(self.client_rss_kib or 0, client_rss_kib)
        if server_rss_kib is not None:
            self.server_rss_kib = max(self.server_rss_kib or 0, server_rss_kib)
        if client_cpu is not None or server_cpu is not None:
            # Each round's CPU split as it happens (the table keeps medians; latest.json keeps every round).
            cpu = " / ".join("—" if v is None else f"{v:.2f}" for v in (client_cpu, server_cpu))
            print(f"[{self.bench}] {self.case} · {self.tool}: {value:.3g} {self.unit}, CPU s client / server {cpu}",
                  file=sys.stderr, flush=True)

    def fail(self, reason: str) -> None:
        """Mark the row failed with a one-line reason (the first line of the error)."""
        first = reason.strip().splitlines()[0] if reason.strip() else "error"
        self.status = f"failed: {first[:160]}"

    def throughput_mb_s(self) -> float | None:
        """MB/s (10^6 bytes) from the median time, when the row moves ``nbytes``."""
        median = self.median
        if self.nbytes is None or not median:
            return None
        return self.nbytes / median / 1e6


def _median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(dockyard: Row, peer: Row) -> float | None:
    """How many times better dockyard is than ``peer`` (>1 means dockyard wins)."""
    d, p = dockyard.median, peer.median
    if not d or not p:
        return None
    return p / d if dockyard.unit in ("s", "ms") else d / p


@dataclass
class Target:
    """A ratio target from the issue: dockyard / ``peer_tool`` in ``bench``/``case`` must reach ``at_least``."""

    label: str
    bench: str
    case: str
    peer_tool: str
    at_least: float


@dataclass
class Results:
    """Everything one run produced, plus the facts that make it reproducible."""

    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    extra_targets: list[dict[str, Any]] = field(default_factory=list)

    def find(self, bench: str, case: str, tool: str) -> Row | None:
        for row in self.rows:
            if (row.bench, row.case, row.tool) == (bench, case, tool):
                return row
        return None

    def dockyard_row(self, bench: str, case: str) -> Row | None:
        for row in self.rows:
            if (row.bench, row.case) == (bench, case) and row.dockyard:
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            data = asdict(row)
            data["median"] = row.median
            data["throughput_mb_s"] = row.throughput_mb_s()
            base = self.dockyard_row(row.bench, row.case)
            data["dockyard_advantage"] = None if base is None or base is row else ratio(base, row)
            rows.append(data)
        return {"meta": self.meta, "rows": rows, "not_run": self.not_run, "targets": self.extra_targets}


def _fmt_value(row: Row) -> str:
    median = row.median
    if median is None:
        return "—"
    if row.unit == "s":
        spread = f" ({min(row.values):.2f}-{max(row.values):.2f})" if len(row.values) > 1 else ""
        return f"{median:.2f} s{spread}"
    if row.unit == "x":
        return f"{median:.2f}x"
    if row.unit == "ms":
        spread = f" ({min(row.values):.2f}-{max(row.values):.2f})" if len(row.values) > 1 else ""
        return f"{median:.2f} ms{spread}"
    return f"{median:,.0f} req/s"


def _fmt_cpu(row: Row) -> str:
    client, server = _median_or_none(row.client_cpu), _median_or_none(row.server_cpu)
    if client is None and server is None:
        return "—"
    return f"{'—' if client is None else f'{client:.2f}'} / {'—' if server is None else f'{server:.2f}'}"


def _fmt_mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f}"


def render_markdown(results: Results) -> str:
    """The results table (medians, ratios vs dockyard, peak RSS), then targets and notes."""
    meta = results.meta
    machine = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    lines = [
        f"Run: {meta.get('date', '?')} · mode: {meta.get('mode')} · rounds: {meta.get('rounds')} · "
        f"total {meta.get('total_seconds', '?')} s · load average before/after: {meta.get('load_before')}"
        f"/{meta.get('load_after')}",
        "",
        f"Machine: {machine.get('nproc', '?')} CPUs ({machine.get('cpu', '?')}), {machine.get('memory', '?')} RAM, "
        f"Linux {machine.get('kernel', '?')} · dockyard serve flags: {meta.get('dockyard_serve_flags', '?')}",
        "",
        f"Versions: {versions}",
        "",
        "| Bench | Case | Tool | Server | Median (min-max) | Throughput | dockyard advantage | Client peak RSS MiB"
        " | Server peak RSS MiB | CPU s client / server | Status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results.rows:
        base = results.dockyard_row(row.bench, row.case)
        if row.dockyard:
            adv = "baseline"
        else:
            value = ratio(base, row) if base is not None else None
            adv = "—" if value is None else f"{value:.2f}x"
        tput = row.throughput_mb_s()
        lines.append(
            f"| {row.bench} | {row.case} | {row.tool} | {row.server} | {_fmt_value(row)} | "
            f"{'—' if tput is None else f'{tput:,.0f} MB/s'} | {adv} | {_fmt_mib(row.client_rss_kib)} | "
            f"{_fmt_mib(row.server_rss_kib)} | {_fmt_cpu(row)} | {row.status} |"
        )
    for bench, reason in results.not_run.items():
        lines.append(f"| {bench} | — | — | — | — | — | — | — | — | — | not run: {reason} |")
    if results.extra_targets:
        lines += ["", "| Target | Measured | Met |", "|---|---|---|"]
        for target in results.extra_targets:
            met = {True: "yes", False: "**no**", None: "n/a"}[target["met"]]
            lines.append(f"| {target['label']} | {target['measured']} | {met} |")
    notes = [f"- {row.bench} {row.tool}: {note}" for row in results.rows for note in row.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def write(results: Results, directory: Path) -> tuple[Path, Path]:
    """Write ``latest.md`` and ``latest.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    md, js = directory / "latest.md", directory / "latest.json"
    md.write_text(render_markdown(results))
    js.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    return md, js
