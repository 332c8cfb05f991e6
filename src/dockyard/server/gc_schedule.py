"""``dockyard serve --gc-interval``: the collection of ``dockyard gc``, on a schedule, on one replica at a time.

Every replica (and every worker process) runs a :class:`GcSchedule` thread, off the event loop. Each tick it asks
the metadata, in one write transaction, whether a scheduled run is due (the last one recorded started at least an
interval ago) and takes the lease :data:`LEASE`; only the holder collects. The lease is renewed inside every
batch's transaction (a holder that lost it, or a server that is stopping, ends its run after the current batch),
and the run is recorded and the lease released in one transaction — so the next replica to tick sees the new
record, and no cycle runs twice. A replica that dies mid-run leaves its lease to expire after :data:`LEASE_TTL`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from .gc import SCHEDULED, GcAbortedError, GcReport, holder_name, sweep
from .storage.protocols import BlobStore, MetadataStore, UploadStore
from .storage.records import GcRunRecord

log = logging.getLogger("dockyard.server")

#: The name of the lease the scheduled collections share.
LEASE = "gc"
#: Seconds a holder's lease lasts without renewal (renewed with every batch).
LEASE_TTL = 120.0
#: The longest time between two looks at whether a run is due.
MAX_TICK = 60.0


def tick_interval(interval: float) -> float:
    """How often each replica looks whether a run is due: a quarter of the interval, at most a minute."""
    return min(max(interval / 4, 0.05), MAX_TICK)


class GcSchedule:
    """A thread that runs a collection every ``interval`` seconds on whichever replica holds the lease."""

    def __init__(
        self, meta: MetadataStore, blobs: BlobStore, uploads: UploadStore, *, interval: float, min_age: float,
    ) -> None:
        self._meta = meta
        self._blobs = blobs
        self._uploads = uploads
        self.interval = interval
        self.min_age = min_age
        #: Host, process and a random part: worker processes and replicas never share a holder name.
        self.holder = f"{holder_name()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dockyard-gc", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress (blocking: call it off the event loop)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(tick_interval(self.interval)):
            try:
                self.run_once()
            except GcAbortedError as exc:
                log.warning("scheduled garbage collection stopped early: %s", exc)
            except Exception:
                log.exception("scheduled garbage collection failed")

    def _due(self, now: float) -> bool:
        """Inside a write transaction: a run is due and this replica now holds the lease."""
        last = self._meta.last_gc_run(SCHEDULED)
        if last is not None and now - last[0].started < self.interval:
            return False
        return self._meta.acquire_lease(LEASE, self.holder, LEASE_TTL)

    def _renew(self, meta: MetadataStore) -> bool:
        return not self._stop.is_set() and meta.acquire_lease(LEASE, self.holder, LEASE_TTL)

    def run_once(self) -> GcReport | None:
        """Collect now if a run is due and this replica wins the lease; the report, ``None`` when it did not run."""
        started = time.time()
        with self._meta.write():
            if not self._due(started):
                return None
        report: GcReport | None = None
        try:
            report = sweep(self._meta, self._blobs, self._uploads, min_age=self.min_age, on_batch=self._renew)
        finally:
            with self._meta.write():
                if report is not None:
                    self._meta.record_gc_run(GcRunRecord(
                        SCHEDULED, self.holder, started, time.time(), len(report.blobs), report.bytes,
                        len(report.uploads),
                    ))
                self._meta.release_lease(LEASE, self.holder)
        log.info("scheduled garbage collection removed %d blob(s) (%d bytes) and %d upload session(s) in %.1f s",
                 len(report.blobs), report.bytes, len(report.uploads), time.time() - started)
        return report
