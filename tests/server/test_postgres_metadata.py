"""``dockyard serve --metadata-url postgresql://…``: real servers on a private PostgreSQL cluster — the
distribution and ACR APIs, locks, two servers sharing one database, and refusing a schema they do not know."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.images import make_image, push
from tests.support.postgres import PostgresCluster
from tests.support.servers import DockyardServer, subprocess_env


def _serve(tmp_path: Path, name: str, url: str, data_dir: Path | None = None) -> DockyardServer:
    return DockyardServer(tmp_path / name, "--metadata-url", url, data_dir=data_dir)


def test_serve_on_postgres_answers_the_distribution_and_acr_apis(tmp_path: Path, postgres_url: str) -> None:
    image = make_image(seed="pg-basics", layers=2)
    with _serve(tmp_path, "srv", postgres_url) as server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        digest = push(image, server.url, "team/app", "v1", client=http)
        push(make_image(seed="pg-basics-2", layers=1), server.url, "team/app", "v2", client=http)
        push(make_image(seed="pg-basics-3", layers=1), server.url, "other", "latest", client=http)

        got = http.get("/v2/team/app/manifests/v1", headers={"Accept": image.media_type})
        assert got.status_code == 200 and got.content == image.body
        assert got.headers["Docker-Content-Digest"] == digest
        layer = image.blobs[-1]
        assert http.get(f"/v2/team/app/blobs/{layer.digest}").content == layer.data
        assert http.get("/v2/team/app/tags/list").json()["tags"] == ["v1", "v2"]
        assert http.get("/v2/team/app/tags/list", params={"n": 1}).json()["tags"] == ["v1"]
        assert http.get("/v2/team/app/tags/list", params={"n": 1, "last": "v1"}).json()["tags"] == ["v2"]
        assert http.get("/v2/_catalog").json()["repositories"] == ["other", "team/app"]

        assert http.get("/acr/v1/_catalog").json()["repositories"] == ["other", "team/app"]
        repo = http.get("/acr/v1/team/app").json()
        assert (repo["tagCount"], repo["manifestCount"]) == (2, 2)
        tags = http.get("/acr/v1/team/app/_tags", params={"orderby": "timedesc"}).json()["tags"]
        assert [t["name"] for t in tags] == ["v2", "v1"]

        # A write-locked tag can be neither moved nor deleted, nor its repository deleted.
        locked = http.patch("/acr/v1/team/app/_tags/v1", json={"writeEnabled": False})
        assert locked.status_code == 200 and locked.json()["tag"]["changeableAttributes"]["writeEnabled"] is False
        other = make_image(seed="pg-basics-4", layers=1)
        with pytest.raises(AssertionError, match="405"):
            push(other, server.url, "team/app", "v1", client=http)
        assert http.delete(f"/v2/team/app/manifests/{digest}").status_code == 405
        assert http.delete("/acr/v1/team/app").status_code == 405
        assert http.get("/v2/team/app/manifests/v1").headers["Docker-Content-Digest"] == digest

        # Unlocked, it goes like anything else.
        assert http.patch("/acr/v1/team/app/_tags/v1", json={"writeEnabled": True}).status_code == 200
        assert http.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
        assert http.get("/v2/team/app/manifests/v1").status_code == 404
        assert http.get("/v2/team/app/tags/list").json()["tags"] == ["v2"]


def test_two_servers_share_one_database(tmp_path: Path, postgres_url: str) -> None:
    shared = tmp_path / "blobs"  # one blob folder for both (object storage is another module's)
    with (
        _serve(tmp_path, "a", postgres_url, data_dir=shared) as a,
        _serve(tmp_path, "b", postgres_url, data_dir=shared) as b,
        httpx.Client(timeout=30.0) as http,
    ):
        image = make_image(seed="pg-shared", layers=1)
        digest = push(image, a.url, "shared/app", "v1", client=http)
        got = http.get(f"{b.url}/v2/shared/app/manifests/v1", headers={"Accept": image.media_type})
        assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
        assert http.get(f"{b.url}/v2/shared/app/tags/list").json()["tags"] == ["v1"]
        # A lock set through one is enforced by the other.
        assert http.patch(f"{b.url}/acr/v1/shared/app/_tags/v1", json={"deleteEnabled": False}).status_code == 200
        assert http.delete(f"{a.url}/v2/shared/app/manifests/{digest}").status_code == 405
        push(make_image(seed="pg-shared-2", layers=1), b.url, "shared/app", "v2", client=http)
        assert http.get(f"{a.url}/v2/shared/app/tags/list").json()["tags"] == ["v1", "v2"]


def _serve_fails(tmp_path: Path, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--port", "0", "--data-dir", str(tmp_path / "data"), *flags],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def _db_upgrade(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "db", "upgrade", *flags],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )


def test_serve_refuses_a_postgres_schema_it_does_not_know(tmp_path: Path, postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.database()
    refused = _serve_fails(tmp_path, "--metadata-url", url)
    assert "run `dockyard db upgrade`" in refused

    upgraded = _db_upgrade("--metadata-url", url)
    assert upgraded.returncode == 0 and "had no schema; created it" in upgraded.stdout, upgraded.stderr
    again = _db_upgrade("--metadata-url", url)
    assert again.returncode == 0 and "already at the current schema" in again.stdout

    postgres_cluster.sql("UPDATE alembic_version SET version_num = '9999'", url.rsplit("/", 1)[1])
    refused = _serve_fails(tmp_path, "--metadata-url", url)
    assert "this dockyard is older than the database" in refused
    assert _db_upgrade("--metadata-url", url).returncode == 1


def test_serve_names_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    refused = _serve_fails(tmp_path, "--metadata-url", "postgresql://dockyard:hunter2@127.0.0.1:1/registry")
    assert "cannot use the metadata database" in refused and "hunter2" not in refused


def test_tokens_made_with_the_cli_log_in_to_a_postgres_server(
    tmp_path: Path, postgres_url: str, htpasswd_file: Path
) -> None:
    from tests.conftest import TEST_USER

    def token(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dockyard", "token", *args, "--metadata-url", postgres_url],
            capture_output=True, text=True, env=subprocess_env(), timeout=60,
        )

    created = token("create", "ci", "--scope", "team/*:content/read", "-o", "json")
    assert created.returncode == 0, created.stderr
    password = json.loads(created.stdout)["password"]
    server = DockyardServer(tmp_path / "srv", "--metadata-url", postgres_url, "--htpasswd", str(htpasswd_file))
    with server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        push(make_image(seed="pg-token", layers=1), server.url, "team/app", "v1", auth=TEST_USER)
        assert http.get("/v2/team/app/tags/list", auth=("ci", password)).status_code == 200
        assert http.get("/v2/other/tags/list", auth=("ci", password)).status_code in (401, 403)
        assert token("disable", "ci").returncode == 0
        assert http.get("/v2/team/app/tags/list", auth=("ci", password)).status_code == 401


def test_an_unreachable_database_is_503_and_the_server_recovers(
    tmp_path: Path, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    image = make_image(seed="pg-outage", layers=1)
    with _serve(tmp_path, "srv", postgres_url) as server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        push(image, server.url, "outage/app", "v1", client=http)
        postgres_cluster.sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        postgres_cluster.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        try:
            down = http.get("/v2/outage/app/manifests/v1")
            assert down.status_code == 503, down.text
            assert down.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert "cannot be reached" in down.json()["errors"][0]["message"]
            assert http.get("/v2/outage/app/tags/list").status_code == 503
        finally:
            postgres_cluster.sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert http.get("/v2/outage/app/manifests/v1").status_code == 200
        push(make_image(seed="pg-outage-2", layers=1), server.url, "outage/app", "v2", client=http)
        assert http.get("/v2/outage/app/tags/list").json()["tags"] == ["v1", "v2"]


def test_connections_the_database_dropped_are_replaced_by_the_next_request(
    tmp_path: Path, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    """Every pooled connection is cut (as a PostgreSQL restart does) while the database stays up: the next read
    (one snapshot, or one statement alone) and the next write each find a dropped connection, and are answered on
    a new one, not with 503."""
    name = postgres_url.rsplit("/", 1)[1]
    drop = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    with _serve(tmp_path, "srv", postgres_url) as server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        image = make_image(seed="pg-dropped", layers=1)
        push(image, server.url, "dropped/app", "v1", client=http)
        for _ in range(8):  # fill the pool: every reader thread holds a connection it returns
            assert http.get("/v2/dropped/app/manifests/v1").status_code == 200
        postgres_cluster.sql(drop)
        assert http.get("/v2/dropped/app/manifests/v1").status_code == 200
        postgres_cluster.sql(drop)
        assert http.get("/v2/dropped/app/tags/list").json()["tags"] == ["v1"]
        postgres_cluster.sql(drop)
        assert http.head(f"/v2/dropped/app/blobs/{image.blobs[-1].digest}").status_code == 200
        postgres_cluster.sql(drop)
        push(make_image(seed="pg-dropped-2", layers=1), server.url, "dropped/app", "v2", client=http)
        assert http.get("/v2/dropped/app/tags/list").json()["tags"] == ["v1", "v2"]


def test_gc_reads_the_references_from_postgres(tmp_path: Path, postgres_url: str) -> None:
    kept, dropped = make_image(seed="pg-gc-kept", layers=1), make_image(seed="pg-gc-dropped", layers=1)
    with _serve(tmp_path, "srv", postgres_url) as server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        push(kept, server.url, "gc/app", "kept", client=http)
        digest = push(dropped, server.url, "gc/app", "dropped", client=http)
        assert http.delete(f"/v2/gc/app/manifests/{digest}").status_code == 202
        assert http.delete(f"/v2/gc/app/blobs/{dropped.blobs[-1].digest}").status_code == 202
        data_dir = server.data_dir
        assert not (data_dir / "metadata.db").exists()
        # Without the URL the data directory holds no database: refused, nothing removed.
        refused = subprocess.run([sys.executable, "-m", "dockyard", "gc", "--data-dir", str(data_dir)],
                                 capture_output=True, text=True, env=subprocess_env(), timeout=60)
        assert refused.returncode == 2 and "is not a dockyard data directory" in refused.stderr
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(data_dir), "--min-age", "0"],
            capture_output=True, text=True, env={**subprocess_env(), "DOCKYARD_METADATA_URL": postgres_url},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"blob {dropped.blobs[-1].digest}" in done.stdout
        for blob in kept.blobs:
            assert http.get(f"/v2/gc/app/blobs/{blob.digest}").content == blob.data
        assert http.get(f"/v2/gc/app/blobs/{dropped.blobs[-1].digest}").status_code == 404


def test_concurrent_pushes_through_two_servers_lose_nothing(tmp_path: Path, postgres_url: str) -> None:
    shared = tmp_path / "blobs"
    with (
        _serve(tmp_path, "a", postgres_url, data_dir=shared) as a,
        _serve(tmp_path, "b", postgres_url, data_dir=shared) as b,
    ):
        def pushes(worker: int) -> dict[str, str]:
            url = (a, b)[worker % 2].url
            with httpx.Client(timeout=60.0) as http:
                return {
                    f"w{worker}-{i}": push(make_image(layers=1, layer_size=256), url, "busy/app", f"w{worker}-{i}",
                                           client=http)
                    for i in range(3)
                }

        with ThreadPoolExecutor(6) as pool:
            expected = {tag: digest for result in pool.map(pushes, range(6)) for tag, digest in result.items()}
        with httpx.Client(base_url=b.url, timeout=30.0) as http:
            assert sorted(http.get("/v2/busy/app/tags/list").json()["tags"]) == sorted(expected)
            repo = http.get("/acr/v1/busy/app").json()
            assert (repo["tagCount"], repo["manifestCount"]) == (len(expected), len(set(expected.values())))


def test_one_statement_resolves_a_reference_as_the_separate_queries_do(postgres_url: str) -> None:
    """``resolve_manifest`` on PostgreSQL is one joined statement: it answers what the repository, tag and manifest
    queries answer in one snapshot, whatever else the repository holds (other tags, other manifests, locks)."""
    from dockyard.oci.digest import compute_digest
    from dockyard.server.storage import records as r
    from dockyard.server.storage.postgres import PostgresMetadataStore
    from dockyard.server.storage.resolve import resolve_manifest

    def new(body: bytes, algorithm: str = "sha256") -> r.NewManifest:
        return r.NewManifest(compute_digest(body, algorithm), "application/vnd.oci.image.manifest.v1+json", len(body),
                             None, None, None, None, None, None, body)

    store = PostgresMetadataStore(postgres_url)
    try:
        tagged, untagged, other = new(b'{"a":1}'), new(b'{"b":2}', "sha512"), new(b'{"c":3}')
        with store.write():
            repo_id = store.ensure_repository("resolve/app")
            for manifest in (tagged, untagged, other):
                store.put_manifest(repo_id, manifest)
            store.put_tag(repo_id, "v1", tagged.digest)
            store.put_tag(repo_id, "locked", other.digest)
            store.set_tag_attributes(repo_id, "locked", {"read_enabled": False})
            store.ensure_repository("resolve/empty")
        cases = [("resolve/app", "v1", None), ("resolve/app", "locked", None), ("resolve/app", "missing", None),
                 ("resolve/app", None, tagged.digest), ("resolve/app", None, untagged.digest),
                 ("resolve/app", None, "sha256:" + "0" * 64), ("resolve/empty", "v1", None),
                 ("resolve/empty", None, tagged.digest), ("resolve/none", "v1", None),
                 ("resolve/none", None, tagged.digest)]
        for name, tag, digest in cases:
            assert store.resolve_manifest(name, tag, digest) == resolve_manifest(store, name, tag, digest), (name, tag)
        repo, tag_record, manifest = store.resolve_manifest("resolve/app", None, untagged.digest)
        assert repo is not None and tag_record is None and manifest is not None and manifest.content == b'{"b":2}'
    finally:
        store.close()
