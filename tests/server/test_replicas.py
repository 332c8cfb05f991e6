"""Replicas behind a load balancer: ``dockyard serve`` processes on one PostgreSQL database and one bucket (moto)
behind haproxy with round-robin and no stickiness. Requests spread over the replicas; an upload alternates between
them; a token from one replica verifies on another; a replica killed while ten clients push loses no acknowledged
push and leaves nothing dangling that gc does not clean; restarted, it serves again."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import obstore
import pytest
import sqlalchemy as sa

from dockyard.oci import compute_digest
from dockyard.server.storage.objects import open_object_store, parse_object_url
from dockyard.server.storage.schema import upgrade
from tests.conftest import TEST_USER, unique
from tests.support.cluster import ReplicaCluster
from tests.support.images import Content, make_image, push, random_bytes
from tests.support.objectstores import Emulator
from tests.support.postgres import PostgresCluster
from tests.support.servers import subprocess_env

PUSHERS = 10
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def cluster(replica_clusters: Callable[[str, bool], ReplicaCluster]) -> ReplicaCluster:
    """The session's two replicas on PostgreSQL + S3 behind haproxy (no auth)."""
    return replica_clusters("pg-s3-lb", False)


@pytest.fixture
def own_cluster(
    postgres_cluster: PostgresCluster, object_storage: Callable[[str], Emulator], tmp_path: Path
) -> Iterator[ReplicaCluster]:
    """Two replicas of this test's own, on a fresh database and bucket (the test kills one)."""
    emulator = object_storage("s3")
    database = postgres_cluster.database()
    upgrade(database)
    with ReplicaCluster(tmp_path / "cluster", metadata_url=database, storage_url=emulator.new_url(),
                        env=emulator.env()) as started:
        yield started


def test_requests_spread_over_every_replica(cluster: ReplicaCluster) -> None:
    before = cluster.requests_per_replica()
    with httpx.Client(timeout=30) as http:  # one keep-alive connection: no stickiness to it either
        for _ in range(20):
            assert http.get(f"{cluster.url}/v2/").status_code == 200
    after = cluster.requests_per_replica()
    served = {name: after[name] - before[name] for name in after}
    assert sum(served.values()) == 20 and all(count > 0 for count in served.values()), served


def test_an_upload_alternates_between_replicas_through_the_balancer(cluster: ReplicaCluster) -> None:
    repo = unique("replicas/upload")
    data = random_bytes(2 * 1024 * 1024 + 17, seed=repo)
    digest = compute_digest(data)
    with cluster.client(timeout=30) as http:
        start = http.post(f"/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        one = http.patch(start.headers["Location"], content=data[:1_000_000],
                         headers={**OCTETS, "Content-Range": "0-999999"})
        assert one.status_code == 202, one.text
        two = http.patch(one.headers["Location"], content=data[1_000_000:2_000_000],
                         headers={**OCTETS, "Content-Range": "1000000-1999999"})
        assert (two.status_code, two.headers["Range"]) == (202, "0-1999999"), two.text
        status = http.get(two.headers["Location"])
        assert (status.status_code, status.headers["Range"]) == (204, "0-1999999")
        done = http.put(two.headers["Location"], params={"digest": digest}, content=data[2_000_000:], headers=OCTETS)
        assert done.status_code == 201, done.text
        got = http.get(f"/v2/{repo}/blobs/{digest}")
        assert got.content == data
    steps = cluster.routed(f"/v2/{repo}/blobs/", 6)
    assert [(s.method, s.status) for s in steps] == [
        ("POST", 202), ("PATCH", 202), ("PATCH", 202), ("GET", 204), ("PUT", 201), ("GET", 307)]
    replicas = [s.replica for s in steps]
    assert all(a != b for a, b in itertools.pairwise(replicas)), f"each step on the other replica: {steps}"


def test_a_token_from_one_replica_verifies_on_the_other(
    replica_clusters: Callable[[str, bool], ReplicaCluster],
) -> None:
    cluster = replica_clusters("pg-s3-lb", True)
    first, second = cluster.replicas
    repo = unique("replicas/token")
    push(make_image(seed=repo), cluster.url, repo, tag="v1", auth=TEST_USER)
    issued = httpx.get(f"{first.url}/oauth2/token", auth=TEST_USER,
                       params={"service": cluster.host, "scope": f"repository:{repo}:pull"})
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    for server in (first, second):
        assert httpx.get(f"{server.url}/v2/{repo}/manifests/v1", headers=bearer).status_code == 200
    challenge = httpx.get(f"{second.url}/v2/").headers["WWW-Authenticate"]
    assert f'realm="{cluster.url}/oauth2/token"' in challenge, "every replica names the balancer's token endpoint"


def test_a_missing_token_key_file_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-key"
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(tmp_path / "data"), "--port", "0",
         "--token-key-file", str(missing)],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: the token signing key file {missing} does not exist: write a new key to it, e.g. "
        f"`openssl rand -hex 32 > {missing}`, and give every replica the same file")


def _blob_ok(http: httpx.Client, base: str, repo: str, descriptor: dict[str, object]) -> bool:
    got = http.get(f"{base}/v2/{repo}/blobs/{descriptor['digest']}")
    return got.status_code == 200 and "sha256:" + hashlib.sha256(got.content).hexdigest() == descriptor["digest"]


def test_a_replica_killed_during_ten_pushers_loses_no_acknowledged_push(
    own_cluster: ReplicaCluster, tmp_path: Path
) -> None:
    cluster = own_cluster
    acknowledged: list[tuple[str, str, Content]] = []
    refused: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def pusher(n: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = 0
            while not stop.is_set():
                repo, tag = f"crash/p{n}", f"t{i}"
                image = make_image(layers=3, layer_size=60_000 + i, seed=f"{repo}-{i}-{uuid.uuid4()}")
                try:
                    push(image, cluster.url, repo, tag, client=http)
                except (AssertionError, httpx.HTTPError) as exc:  # the push was not acknowledged
                    with lock:
                        refused.append(str(exc)[:200])
                else:  # the manifest PUT answered 201
                    with lock:
                        acknowledged.append((repo, tag, image))
                i += 1

    def wait_for(count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(acknowledged) < count:
            assert time.monotonic() < deadline, f"only {len(acknowledged)} pushes acknowledged; refused: {refused}"
            time.sleep(0.05)

    # A client that started an upload on the replica about to die, and is never heard from again.
    with cluster.client(timeout=30) as http:
        abandoned = http.post("/v2/crash/abandoned/blobs/uploads/").headers["Location"]
        assert http.patch(abandoned, content=b"x" * 100_000, headers={**OCTETS, "Content-Range": "0-99999"}
                          ).status_code == 202
    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(PUSHERS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(PUSHERS)
        cluster.kill(0)
        killed_at = len(acknowledged)
        cluster.wait_status(0, "DOWN")
        wait_for(killed_at + 2 * PUSHERS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    survivor = cluster.replicas[1]
    print(f"{len(acknowledged)} pushes acknowledged ({killed_at} before the kill), {len(refused)} refused")

    # Every acknowledged push pulls completely, and verifies, from the surviving replica.
    with httpx.Client(timeout=30, follow_redirects=True) as http:
        for repo, tag, image in acknowledged:
            top = http.get(f"{survivor.url}/v2/{repo}/manifests/{tag}", headers={"Accept": image.media_type})
            assert (top.status_code, top.content) == (200, image.body), f"{repo}:{tag} was acknowledged"
            for blob in image.all_blobs():
                got = http.get(f"{survivor.url}/v2/{repo}/blobs/{blob.digest}")
                assert got.content == blob.data, f"{repo}:{tag} blob {blob.digest}"

        # Nothing dangling: every manifest in the database (tagged or not) names only blobs that are stored.
        engine = sa.create_engine(cluster.metadata_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as db:
            rows = db.execute(sa.text(
                "SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id")).all()
        engine.dispose()
        assert len(rows) >= len(acknowledged)
        for repo, digest in rows:
            got = http.get(f"{survivor.url}/v2/{repo}/manifests/{digest}",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            assert got.status_code == 200, f"{repo}@{digest}"
            document = json.loads(got.content)
            for descriptor in [document["config"], *document["layers"]]:
                assert _blob_ok(http, survivor.url, repo, descriptor), f"{repo}@{digest} names {descriptor}"

    # Upload sessions the crash left behind are removed by gc (the same happens after --upload-ttl of idleness).
    store = _store(cluster)
    session = abandoned.rstrip("/").rpartition("/")[2]
    left = [m["path"] for page in obstore.list(store, "uploads/") for m in page]
    assert any(session in path for path in left), left
    env = subprocess_env() | cluster.env
    (tmp_path / "gc").mkdir()  # gc records its last run in a data dir of its own
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(tmp_path / "gc"), "--metadata-url",
         cluster.metadata_url, "--storage-url", str(cluster.storage_url), "--min-age", "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"upload {session}" in result.stdout
    assert not [m for page in obstore.list(store, "uploads/") for m in page]
    with cluster.client(timeout=30) as http:
        assert http.get(abandoned).status_code == 404

    # The killed replica, restarted, serves what was pushed while it was down, and takes requests again.
    restarted = cluster.restart(0)
    repo, tag, image = acknowledged[-1]
    got = httpx.get(f"{restarted.url}/v2/{repo}/manifests/{tag}", headers={"Accept": image.media_type})
    assert (got.status_code, got.content) == (200, image.body)
    before = cluster.requests_per_replica()["r0"]
    push(make_image(seed=f"after-{uuid.uuid4()}"), cluster.url, "crash/after", "v1")
    assert cluster.requests_per_replica()["r0"] > before


def _store(cluster: ReplicaCluster) -> obstore.store.S3Store:
    """A client of the cluster's bucket and prefix, for looking under the replicas."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in cluster.env.items():
            env.setenv(key, value)
        return open_object_store(parse_object_url(str(cluster.storage_url)))  # type: ignore[return-value]
