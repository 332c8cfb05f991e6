"""B12: ``dockyard gc`` while a pusher runs — collection time against the number of blobs, and what it does to
the pusher's latency.

For each backend (SQLite + files; PostgreSQL + S3 on moto_server when both are installed) and each blob count,
a fresh registry is seeded straight through the store APIs (not HTTP): ``count`` blobs, each linked into a
repository, half of them named by manifests (ten per manifest), half garbage. A ``dockyard serve`` on the same
metadata and storage takes pushes of a small new image (two blobs, one manifest) in a loop from one client:
first for a while without a collection (the baseline), then while ``dockyard gc --min-age 0`` runs as its own
process. Reported: the collection's wall time (process start-up included) and the push latency median/p95
without and during the collection. Pushes the collection refused (blobs collected before their manifest came,
which ``--min-age 0`` allows) are retried and counted in a note.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import httpx
from tests.support.images import make_image, upload_blob
from tests.support.servers import DockyardServer, subprocess_env

from benchmarks.context import Context
from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.server.storage.protocols import MetadataStore
from dockyard.server.storage.records import NewManifest

#: Blob counts per backend: the issue's 10k and 100k (PostgreSQL + S3: moto_server lists and stores 100k
#: objects slowly, so 10k there), and a handful for ``--quick``.
FULL_COUNTS = {"sqlite-files": (10_000, 100_000), "postgres-s3": (10_000,)}
QUICK_COUNTS = {"sqlite-files": (400,)}
#: Layers named per seeded manifest.
PER_MANIFEST = 10
#: Seconds of pushing before the collection starts (the baseline).
BASELINE_SECONDS = {"full": 8.0, "quick": 1.0}
#: Seeded objects written at once to object storage.
PUT_CONCURRENCY = 64


def missing() -> str | None:
    """SQLite + files always runs; PostgreSQL + S3 is skipped inside when its peers are not installed."""
    return None


def _pg_missing() -> str | None:
    from tests.support.postgres import PG_BIN

    if not (PG_BIN / "initdb").exists():
        return "PostgreSQL (initdb) is not installed"
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists() and subprocess.run(["which", "moto_server"], capture_output=True).returncode != 0:
        return "moto_server is not installed"
    return None


def _blob_bytes(i: int) -> bytes:
    return f"b12-seeded-blob-{i}".encode()


def _seed_metadata(meta: MetadataStore, count: int) -> list[str]:
    """Link ``count`` blobs into one repository; manifests name the first half. The digests."""
    digests = [compute_digest(_blob_bytes(i)) for i in range(count)]
    referenced = count // 2
    with meta.write():
        repo_id = meta.ensure_repository("b12/seeded")
        for i, digest in enumerate(digests):
            meta.link_blob(repo_id, digest, len(_blob_bytes(i)))
        for first in range(0, referenced - PER_MANIFEST + 1, PER_MANIFEST):
            def descriptor(i: int, media_type: str) -> dict[str, object]:
                return {"mediaType": media_type, "digest": digests[i], "size": len(_blob_bytes(i))}

            body = json.dumps({
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": descriptor(first, mt.OCI_CONFIG),
                "layers": [descriptor(i, mt.OCI_LAYER) for i in range(first + 1, first + PER_MANIFEST)],
            }).encode()
            meta.put_manifest(repo_id, NewManifest(
                digest=compute_digest(body), media_type=mt.OCI_MANIFEST, content=body, image_size=len(body),
                config_media_type=mt.OCI_CONFIG, artifact_type=None, subject=None, annotations=None,
                architecture=None, os=None,
            ))
    return digests


def _seed_files(folder: Path, digests: list[str]) -> None:
    from dockyard.server.storage.blobs import FileBlobStore

    store = FileBlobStore(folder)
    for i, digest in enumerate(digests):
        path = store.path(Digest.parse(digest))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_blob_bytes(i))


def _seed_objects(url: str, digests: list[str]) -> None:
    import obstore

    from dockyard.server.storage.objects import open_object_store, parse_object_url

    store = open_object_store(parse_object_url(url))

    async def put_all() -> None:
        gate = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(i: int, digest: str) -> None:
            parsed = Digest.parse(digest)
            async with gate:
                await obstore.put_async(store, f"blobs/{parsed.algorithm}/{parsed.hex[:2]}/{parsed.hex}",
                                        _blob_bytes(i))

        await asyncio.gather(*(put(i, d) for i, d in enumerate(digests)))

    asyncio.run(put_all())


class Pusher:
    """One client pushing small new images in a loop; each push's (start, end) time, and the retries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pushes: list[tuple[float, float]] = []
        self.retries = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=120.0) as http:
                n = 0
                while not self._stop.is_set():
                    image = make_image(seed=f"b12-push-{os.getpid()}-{time.time_ns()}-{n}", layers=1,
                                       layer_size=4096)
                    began = time.perf_counter()
                    self._push(http, image, f"v{n}")
                    self.pushes.append((began, time.perf_counter()))
                    n += 1
        except BaseException as exc:  # reported by the harness
            self.error = exc

    def _push(self, http: httpx.Client, image: object, tag: str) -> None:
        for _attempt in range(20):
            try:
                for blob in image.blobs:  # type: ignore[attr-defined]
                    upload_blob(http, self.url, "b12/pushed", blob.data, blob.digest)
            except AssertionError as exc:
                if "BLOB_UPLOAD_UNKNOWN" not in str(exc):
                    raise
                self.retries += 1
                continue
            answer = http.put(f"/v2/b12/pushed/manifests/{tag}", content=image.body,  # type: ignore[attr-defined]
                              headers={"Content-Type": image.media_type})  # type: ignore[attr-defined]
            if answer.status_code == 201:
                return
            if answer.status_code != 400 or "MANIFEST_BLOB_UNKNOWN" not in answer.text:
                raise RuntimeError(f"push refused: {answer.status_code} {answer.text[:200]}")
            self.retries += 1
        raise RuntimeError("a push was refused 20 times")

    def latencies(self, start: float, end: float) -> list[float]:
        """Durations of the pushes that started at or after ``start`` and ended by ``end``."""
        return [b - a for a, b in self.pushes if a >= start and b <= end]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextmanager
def _backend(ctx: Context, name: str) -> Iterator[tuple[Path, list[str], dict[str, str],
                                                        Callable[[list[str]], None], Callable[[], MetadataStore]]]:
    """(data dir, serve/gc flags, environment, blob seeder, metadata opener) of a fresh registry on ``name``."""
    from dockyard.server.storage.stores import open_metadata

    data = ctx.fresh_dir(f"b12-{name}")
    if name == "sqlite-files":
        yield data, [], {}, lambda digests: _seed_files(data, digests), lambda: open_metadata(None, data)
        return
    from tests.support.objectstores import start_emulator
    from tests.support.postgres import PostgresCluster

    from dockyard.server.storage.schema import upgrade

    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="dockyard-b12-pg-"))).start()
    s3 = start_emulator("s3", ctx.fresh_dir("b12-moto"))
    try:
        url = cluster.database()
        upgrade(url)
        storage = s3.new_url()
        env = s3.env()

        def seed(digests: list[str]) -> None:
            with mock.patch.dict(os.environ, env):
                _seed_objects(storage, digests)

        yield data, ["--metadata-url", url, "--storage-url", storage], env, seed, lambda: open_metadata(url, data)
    finally:
        s3.stop()
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


def _one(ctx: Context, name: str, count: int) -> None:
    label = "SQLite + files" if name == "sqlite-files" else "PostgreSQL + S3 (moto)"
    case = f"{label}, {count:,} blobs (half referenced)"
    duration = ctx.row("B12", f"{case}: gc duration", "dockyard gc --min-age 0", "dockyard serve")
    p50 = {tool: ctx.row("B12", f"{case}: push latency p50", tool, "dockyard serve", dockyard=tool == "without gc")
           for tool in ("without gc", "during gc")}
    p95 = {tool: ctx.row("B12", f"{case}: push latency p95", tool, "dockyard serve", dockyard=tool == "without gc")
           for tool in ("without gc", "during gc")}
    with _backend(ctx, name) as (data, flags, env, seed_blobs, open_meta):
        began = time.monotonic()
        meta = open_meta()
        try:
            digests = _seed_metadata(meta, count)
        finally:
            meta.close()
        seed_blobs(digests)
        duration.notes.append(f"{case}: seeding through the store APIs took {time.monotonic() - began:.1f} s")
        server = DockyardServer(ctx.fresh_dir("b12-serve"), *flags, data_dir=data)
        with mock.patch.dict(os.environ, env):
            server.start(timeout=60)
        pusher = Pusher(server.url)
        try:
            time.sleep(0.2)  # the seeded links are older than the collection's start
            pusher.start()
            base_start = time.perf_counter()
            time.sleep(BASELINE_SECONDS[ctx.settings.mode])
            base_end = gc_start = time.perf_counter()
            gc = subprocess.run(
                [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(data), *flags, "--min-age", "0"],
                capture_output=True, text=True, env={**subprocess_env(), **env}, timeout=ctx.settings.timeout * 10,
            )
            gc_end = time.perf_counter()
            pusher.stop()
        finally:
            pusher.stop()
            server.stop()
        if pusher.error is not None:
            raise RuntimeError(f"the pusher failed: {pusher.error}")
        if gc.returncode != 0:
            duration.fail(gc.stderr or gc.stdout)
            return
        duration.add(gc_end - gc_start)
        summary = next((line for line in gc.stdout.splitlines() if line.startswith("removed")), "")
        duration.notes.append(f"{case}: {summary}; the pusher retried {pusher.retries} time(s)")
        for when, (start, end) in {"without gc": (base_start, base_end), "during gc": (gc_start, gc_end)}.items():
            latencies = pusher.latencies(start, end)
            if not latencies:
                p50[when].fail("no push completed in the window")
                p95[when].fail("no push completed in the window")
                continue
            p50[when].add(statistics.median(latencies))
            p95[when].add(_p95(latencies))
            p50[when].notes.append(f"{case}: {len(latencies)} pushes {when}")


def run_b12(ctx: Context) -> None:
    counts = QUICK_COUNTS if ctx.settings.mode == "quick" else FULL_COUNTS
    for name, sizes in counts.items():
        if name == "postgres-s3":
            reason = _pg_missing()
            if reason:
                ctx.results.not_run["B12 PostgreSQL + S3"] = reason
                continue
        for count in sizes:
            _one(ctx, name, count)
