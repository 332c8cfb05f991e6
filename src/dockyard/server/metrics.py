"""The server's Prometheus metrics: what is counted while serving, and the text a scrape of ``/metrics`` returns.

Request metrics are labelled by the route *template* (``/v2/{name:path}/manifests/{reference}``), never the raw
path, so their number stays bounded. Storage figures (blobs and bytes stored, open upload sessions) are taken
when a scrape comes, not maintained. With ``--workers N`` the parent process points ``PROMETHEUS_MULTIPROC_DIR``
at a private directory (see :mod:`.run`) and every worker's counters are summed in each scrape.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .gc import GcRun

# No ``*_created`` series: they double the output and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated

#: Set by the parent process when workers share one set of metrics.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The ``Content-Type`` of a scrape.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The route label of a request no route matched.
UNMATCHED = "unmatched"

#: Latency buckets (seconds): registry requests range from a cached HEAD to a multi-gigabyte blob.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class StorageSnapshot:
    """Storage figures read for one scrape."""

    blobs: int
    bytes: int
    uploads: int
    #: The last ``dockyard gc`` run on the registry's metadata (a separate process), when there was one.
    gc_command: GcRun | None = None
    #: The last scheduled collection (``--gc-interval``) of any replica sharing the metadata.
    gc_scheduled: GcRun | None = None


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: StorageSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("dockyard_blobs_stored", "Distinct blobs linked into repositories.",
                                value=self.snapshot.blobs)
        yield GaugeMetricFamily("dockyard_blob_bytes_stored", "Total size of the stored blobs, in bytes.",
                                value=self.snapshot.bytes)
        yield GaugeMetricFamily("dockyard_upload_sessions_open", "Upload sessions in progress (not yet committed).",
                                value=self.snapshot.uploads)
        yield from _gc_run_families("command", "`dockyard gc`", self.snapshot.gc_command)
        yield from _gc_run_families("scheduled", "scheduled collection (--gc-interval, any replica)",
                                    self.snapshot.gc_scheduled)


def _gc_run_families(kind: str, what: str, run: GcRun | None) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """``dockyard_gc_<kind>_*``: how many runs of a kind the metadata records, and the last one."""
    if run is None:
        return
    yield CounterMetricFamily(f"dockyard_gc_{kind}_runs", f"Runs of {what} on this registry's metadata.",
                              value=run.runs)
    yield GaugeMetricFamily(f"dockyard_gc_{kind}_last_run_timestamp_seconds", f"When the last {what} run finished.",
                            value=run.finished)
    yield GaugeMetricFamily(f"dockyard_gc_{kind}_last_run_duration_seconds", f"How long the last {what} run took.",
                            value=run.duration)
    removed = GaugeMetricFamily(f"dockyard_gc_{kind}_last_run_removed",
                                f"What the last {what} run removed (what: blobs, bytes, uploads).", labels=["what"])
    for name, count in (("blobs", run.blobs), ("bytes", run.bytes), ("uploads", run.uploads)):
        removed.add_metric([name], count)
    yield removed


class Metrics:
    """The metrics of one server process (one worker)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # In multiprocess mode the values live in the shared directory; a scrape reads them from there.
        self._registry = None if self.multiprocess else CollectorRegistry()
        registry = self._registry
        self.requests = Counter(
            "dockyard_http_requests", "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=registry,
        )
        self.latency = Histogram(
            "dockyard_http_request_duration_seconds", "Time from a request's arrival to its last response byte.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.received = Counter(
            "dockyard_http_received_bytes", "Request body bytes received, by route template.", ["route"],
            registry=registry,
        )
        self.sent = Counter(
            "dockyard_http_sent_bytes", "Response body bytes sent, by route template.", ["route"], registry=registry
        )
        self.gc_runs = Counter(
            "dockyard_gc_runs", "Garbage collection runs of the server (kind: upload_sweep).", ["kind"],
            registry=registry,
        )
        self.gc_removed = Counter(
            "dockyard_gc_removed", "Things garbage collection removed (what: uploads).", ["what"], registry=registry
        )
        self.gc_last_run = Gauge(
            "dockyard_gc_last_run_timestamp_seconds", "When the last garbage collection run of this kind finished.",
            ["kind"], registry=registry, multiprocess_mode="max",
        )
        self.gc_last_duration = Gauge(
            "dockyard_gc_last_run_duration_seconds", "How long the last garbage collection run of this kind took.",
            ["kind"], registry=registry, multiprocess_mode="mostrecent",
        )

    def observe_request(
        self, route: str, method: str, status: int, received: int, sent: int, seconds: float
    ) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if received:
            self.received.labels(route).inc(received)
        if sent:
            self.sent.labels(route).inc(sent)

    def observe_gc(self, kind: str, started: float, removed: dict[str, int]) -> None:
        """Count one garbage collection run that started at ``started`` (``time.time()``) and just finished."""
        now = time.time()
        self.gc_runs.labels(kind).inc()
        for what, count in removed.items():
            if count:
                self.gc_removed.labels(what).inc(count)
        self.gc_last_run.labels(kind).set(now)
        self.gc_last_duration.labels(kind).set(max(0.0, now - started))

    def render(self, snapshot: StorageSnapshot) -> bytes:
        """The Prometheus text of a scrape (blocking: reads the shared directory in multiprocess mode)."""
        if self._registry is not None:
            registry = self._registry
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        extra = CollectorRegistry()
        extra.register(_SnapshotCollector(snapshot))
        return generate_latest(registry) + generate_latest(extra)
