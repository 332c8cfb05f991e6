"""Garbage collection next to replicas: pushes through one ``dockyard serve`` while collections run, on SQLite +
files and on PostgreSQL + S3 (moto); ``--gc-interval`` on two replicas runs one collection per cycle."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dockyard.oci import compute_digest
from tests.support.gc_loop import RepeatedCollection
from tests.support.images import Content, make_image, random_bytes, upload_blob
from tests.support.servers import DockyardServer, subprocess_env


@dataclass
class Backend:
    """A metadata URL and a storage URL (with the environment reaching them) shared by every replica."""

    name: str
    data_dir: Path
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    servers: list[DockyardServer] = field(default_factory=list)

    def serve(self, workdir: Path, *extra: str) -> DockyardServer:
        server = DockyardServer(workdir, *self.flags, *extra, data_dir=self.data_dir)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.env.items():
                patch.setenv(key, value)
            server.start()
        self.servers.append(server)
        return server

    def gc(self, *flags: str) -> str:
        """``dockyard gc`` to completion (it must succeed); its output."""
        result = subprocess.run(
            [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(self.data_dir), *self.flags, *flags],
            capture_output=True, text=True, env={**subprocess_env(), **self.env}, timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(params=["sqlite-files", "postgres-s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    found = Backend(request.param, tmp_path / "data")
    if request.param == "postgres-s3":
        s3 = request.getfixturevalue("object_storage")("s3")
        found.flags = ["--metadata-url", request.getfixturevalue("postgres_url"), "--storage-url", s3.new_url()]
        found.env = s3.env()
    try:
        yield found
    finally:
        found.stop()


#: What a client that retries sees while collections with no grace period run: its session or its blobs were
#: collected before its manifest arrived (never acknowledged, so nothing is lost), or the store answered 503.
RETRYABLE = ("BLOB_UPLOAD_UNKNOWN", "MANIFEST_BLOB_UNKNOWN", "UNAVAILABLE")


def push_with_retries(http: httpx.Client, base_url: str, repo: str, tag: str, image: Content) -> int:
    """Push ``image`` (blobs, then the manifest) until the manifest is acknowledged; how many attempts failed."""
    for attempt in range(40):
        try:
            for blob in image.blobs:
                upload_blob(http, base_url, repo, blob.data, blob.digest)
            response = http.put(f"{base_url}/v2/{repo}/manifests/{tag}", content=image.body,
                                headers={"Content-Type": image.media_type})
            if response.status_code == 201:
                return attempt
            assert response.status_code in (400, 503), response.text
            assert response.json()["errors"][0]["code"] in RETRYABLE, response.text
        except AssertionError as exc:
            if not any(code in str(exc) for code in RETRYABLE):
                raise
    raise AssertionError(f"{repo}:{tag} was never acknowledged")


def pulls_completely(http: httpx.Client, base_url: str, repo: str, tag: str, image: Content) -> None:
    """The manifest, byte for byte, and every blob, its digest verified (following presigned redirects)."""
    got = http.get(f"{base_url}/v2/{repo}/manifests/{tag}", headers={"Accept": image.media_type})
    assert got.status_code == 200 and got.content == image.body, (repo, tag, got.status_code)
    for blob in image.blobs:
        data = http.get(f"{base_url}/v2/{repo}/blobs/{blob.digest}")
        assert data.status_code == 200, (repo, tag, blob.digest, data.status_code)
        assert compute_digest(data.content) == blob.digest


PUSHERS = 6
IMAGES_EACH = 3


def test_collections_racing_pushes_on_another_replica_lose_nothing(backend: Backend, tmp_path: Path) -> None:
    """``dockyard gc --min-age 0`` runs in a loop while six clients push through replica A; afterwards (and after
    one more collection) every acknowledged manifest pulls completely through replica B."""
    a = backend.serve(tmp_path / "a")
    b = backend.serve(tmp_path / "b")
    gc_loop = RepeatedCollection(lambda: backend.gc("--min-age", "0"))
    accepted: list[tuple[str, str, Content]] = []
    retries: list[int] = []

    def pusher(n: int) -> None:
        try:
            with httpx.Client(timeout=60.0, follow_redirects=True) as http:
                for i in range(IMAGES_EACH):
                    image = make_image(seed=f"gc-replicas-{backend.name}-{n}-{i}", layers=2, layer_size=16 * 1024)
                    retries.append(push_with_retries(http, a.url, f"pushers/p{n}", f"v{i}", image))
                    accepted.append((f"pushers/p{n}", f"v{i}", image))
                    while len(gc_loop.runs) < i + 1 and not gc_loop.failures and not gc_loop.stop.is_set():
                        gc_loop.stop.wait(0.05)  # the pushes stay spread over several collections
        except BaseException as exc:
            gc_loop.failures.append(exc)

    with gc_loop:
        threads = [threading.Thread(target=pusher, args=(n,), daemon=True) for n in range(PUSHERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not gc_loop.failures, gc_loop.failures
    assert len(gc_loop.runs) >= 2
    assert len(accepted) == PUSHERS * IMAGES_EACH
    backend.gc("--min-age", "0")
    with httpx.Client(timeout=60.0, follow_redirects=True) as http:
        for repo, tag, image in accepted:
            pulls_completely(http, b.url, repo, tag, image)


def scheduled_runs(url: str) -> list[sa.Row[tuple[str, float, float]]]:
    """Every scheduled run the database records: (holder, started, finished), oldest first."""
    from dockyard.server.storage.schema import engine_url
    from dockyard.server.storage.tables import gc_runs

    engine = sa.create_engine(engine_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            query = sa.select(gc_runs.c.holder, gc_runs.c.started, gc_runs.c.finished).where(
                gc_runs.c.kind == "scheduled").order_by(gc_runs.c.id)
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


INTERVAL = 1.0


def test_gc_interval_runs_one_collection_per_cycle_across_replicas(
    tmp_path: Path, postgres_url: str,
) -> None:
    """Two replicas with ``--gc-interval 1s --gc-min-age 0`` on one PostgreSQL database and one blob folder: the
    garbage goes, the runs never overlap and start at least an interval apart (one replica per cycle, through
    the lease), and ``/metrics`` on both replicas shows the runs."""
    backend = Backend("postgres-files", tmp_path / "data", ["--metadata-url", postgres_url])
    try:
        a = backend.serve(tmp_path / "a", "--gc-interval", "1s", "--gc-min-age", "0")
        b = backend.serve(tmp_path / "b", "--gc-interval", "1s", "--gc-min-age", "0")
        image = make_image(seed="gc-interval-kept", layers=2)
        with httpx.Client(timeout=60.0) as http:
            push_with_retries(http, a.url, "sched/app", "v1", image)
            garbage = upload_blob(http, b.url, "sched/loose", random_bytes(4000, "gc-interval-garbage"))
            deadline = time.monotonic() + 60
            while http.head(f"{a.url}/v2/sched/loose/blobs/{garbage}").status_code != 404:
                assert time.monotonic() < deadline, "the scheduled collection never removed the garbage"
                time.sleep(0.2)
            while len(scheduled_runs(postgres_url)) < 4:
                assert time.monotonic() < deadline, "fewer scheduled runs than expected"
                time.sleep(0.2)
            runs = scheduled_runs(postgres_url)
            for before, after in itertools.pairwise(runs):
                assert after.started >= before.finished, "two scheduled collections overlapped"
                assert after.started - before.started >= INTERVAL - 0.01, "two collections in one cycle"
            pulls_completely(http, a.url, "sched/app", "v1", image)
            pulls_completely(http, b.url, "sched/app", "v1", image)
            for server in (a, b):
                text = http.get(f"{server.url}/metrics").text
                assert (metric(text, "dockyard_gc_scheduled_runs_total") or 0) >= len(runs)
                finished = metric(text, "dockyard_gc_scheduled_last_run_timestamp_seconds")
                assert finished is not None and finished >= runs[-1].finished - 0.001
    finally:
        backend.stop()
