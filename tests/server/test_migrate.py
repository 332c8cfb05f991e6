"""``dockyard migrate``: a registry filled through a real ``dockyard serve`` (SQLite + files) moved into PostgreSQL +
S3 (moto_server) or Azure Blob (Azurite) and back, then served from the destination and checked with skopeo and the
SDK; interrupted with SIGKILL and resumed without sending a blob twice; a corrupted source blob, a destination
holding another registry and a damaged destination are refused by name."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import obstore
import pytest

from dockyard import ContainerRegistryClient
from dockyard.cli.main import main
from dockyard.credentials import BasicCredential
from dockyard.errors import HttpResponseError
from dockyard.layout import OCILayout
from dockyard.server.migrate.blobs import _open_session
from dockyard.server.storage.blobs import FileBlobStore, FileUploadStore
from dockyard.server.storage.objects import open_object_store, parse_object_url
from dockyard.server.storage.records import UploadState
from tests.conftest import TEST_USER
from tests.support.images import (
    Content,
    make_artifact,
    make_image,
    make_multiarch_index,
    push,
    random_bytes,
    upload_blob,
)
from tests.support.objectstores import Emulator
from tests.support.postgres import PostgresCluster
from tests.support.servers import DockyardServer, blob_file, subprocess_env, write_htpasswd
from tests.support.skopeo import Skopeo

E: dict[str, Any] = {"enforce_https": False}


@dataclass
class Outcome:
    """How a ``dockyard migrate`` run ended."""

    returncode: int
    stdout: str
    stderr: str


def migrate(*args: str, env: dict[str, str] | None = None, check: bool = True) -> Outcome:
    """``dockyard migrate ARGS -o json`` to completion, through the CLI's own entry point in this process (as a
    subprocess would run it, without the interpreter's start-up; the interrupted run is a real subprocess)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
                pytest.raises(SystemExit) as exited:
            main(["migrate", *args, "-o", "json"])
    done = Outcome(int(exited.value.code or 0), stdout.getvalue(), stderr.getvalue())
    if check:
        assert done.returncode == 0, done.stderr
    return done


def report(done: Outcome) -> dict[str, Any]:
    return dict(json.loads(done.stdout))


def cli(data_dir: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dockyard", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Source:
    """A stopped single-host registry (SQLite + files) and what was put into it."""

    data_dir: Path
    htpasswd: Path
    repos: dict[str, Content] = field(default_factory=dict)
    token_password: str = ""
    #: Everything the SDK says about it, taken while it was serving.
    properties: dict[str, Any] = field(default_factory=dict)


def snapshot(url: str) -> dict[str, Any]:
    """Every repository, manifest and tag property (locks and timestamps included) the SDK reports."""
    found: dict[str, Any] = {}
    with ContainerRegistryClient(url, BasicCredential(*TEST_USER)) as client:
        for repo in ("mig/app", "mig/locked", "mig/hidden"):
            props = client.get_repository_properties(repo, **E)
            found[repo] = (props.created_on, props.last_updated_on, props.manifest_count, props.tag_count,
                           props.can_delete, props.can_write, props.can_read, props.can_list)
            for tag in client.list_tag_properties(repo, **E):
                found[f"{repo}:{tag.name}"] = (tag.digest, tag.created_on, tag.last_updated_on, tag.can_delete,
                                               tag.can_write, tag.can_read, tag.can_list)
            for m in client.list_manifest_properties(repo, **E):
                found[f"{repo}@{m.digest}"] = (m.created_on, m.last_updated_on, m.size_in_bytes, m.architecture,
                                               m.operating_system, sorted(m.tags or []), m.can_delete, m.can_write,
                                               m.can_read, m.can_list)
    return found


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A registry filled through ``dockyard serve`` and the CLI: a multi-arch index with a referrer, locked tags,
    manifests and repositories, a token and a scope map; then stopped."""
    root = tmp_path_factory.mktemp("migrate-source")
    src = Source(root / "data", write_htpasswd(root / "htpasswd", dict([TEST_USER])))
    with DockyardServer(root / "serve", "--htpasswd", str(src.htpasswd), data_dir=src.data_dir) as server:
        index = make_multiarch_index(seed="mig-index", layer_size=4096)
        push(index, server.url, "mig/app", tag="v1", auth=TEST_USER)
        referrer = make_artifact({"sbom.json": b'{"sbom": true}'}, subject=index, annotations={"k": "v"})
        push(referrer, server.url, "mig/app", auth=TEST_USER)
        locked = make_image(layers=2, layer_size=300_000, seed="mig-locked")
        push(locked, server.url, "mig/locked", tag="stable", auth=TEST_USER)
        push(locked, server.url, "mig/locked", tag="latest", auth=TEST_USER)
        hidden = make_image(layers=1, layer_size=1000, seed="mig-hidden")
        push(hidden, server.url, "mig/hidden", tag="v1", auth=TEST_USER)
        src.repos = {"mig/app": index, "mig/locked": locked, "mig/hidden": hidden}
        with ContainerRegistryClient(server.url, BasicCredential(*TEST_USER)) as client:
            client.update_tag_properties("mig/locked", "stable", can_write=False, can_delete=False, **E)
            client.update_manifest_properties("mig/locked", locked.digest, can_delete=False, **E)
            client.update_repository_properties("mig/locked", can_delete=False, **E)
            client.update_repository_properties("mig/hidden", can_list=False, **E)
        cli(src.data_dir, "scope-map", "create", "readers", "--scope", "mig/*:content/read,metadata/read",
            "--description", "read all of mig")
        created = cli(src.data_dir, "token", "create", "ci", "--scope-map", "readers")
        src.token_password = created.strip().splitlines()[-1]
        cli(src.data_dir, "token", "create", "gone", "--scope", "mig/app:content/read")
        cli(src.data_dir, "token", "delete", "gone")
        src.properties = snapshot(server.url)
    return src


def rows_of(database: Path | str, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute(sql).fetchall()


def emulator_env(emulator: Emulator) -> dict[str, str]:
    return emulator.env()


@contextlib.contextmanager
def served(workdir: Path, src: Source, metadata: str, storage: str, env: dict[str, str]) -> Iterator[DockyardServer]:
    """``dockyard serve`` on a migrated registry (its own, empty data dir for everything else)."""
    server = DockyardServer(workdir, "--htpasswd", str(src.htpasswd), "--metadata-url", metadata,
                            "--storage-url", storage, "--storage-redirect", "off")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        server.start()
    try:
        yield server
    finally:
        server.stop()


def check_registry(server: DockyardServer, src: Source, workdir: Path) -> None:
    """Everything pulls with skopeo (as the migrated token), the SDK reports the same properties, locks hold."""
    assert snapshot(server.url) == src.properties
    skopeo = Skopeo(workdir / "skopeo")
    token = f"ci:{src.token_password}"
    for repo, tag in (("mig/app", "v1"), ("mig/locked", "stable"), ("mig/hidden", "v1")):
        out = workdir / f"pulled-{repo.replace('/', '-')}"
        skopeo.copy(f"docker://{server.host}/{repo}:{tag}", f"oci:{out}:{tag}", "--all", "--preserve-digests",
                    "--src-creds", token)
        layout = OCILayout.open(out)
        for blob in src.repos[repo].all_blobs():
            assert layout.read_blob(blob.digest) == blob.data
    referrers = httpx.get(f"{server.url}/v2/mig/app/referrers/{src.repos['mig/app'].digest}", auth=TEST_USER)
    assert [d["artifactType"] for d in referrers.json()["manifests"]] == ["application/vnd.dockyard.test.v1"]
    with ContainerRegistryClient(server.url, BasicCredential(*TEST_USER)) as client, \
            pytest.raises(HttpResponseError):
        client.delete_tag("mig/locked", "stable", **E)
    # The token's secret hash was moved as it was: its password logs in, a wrong one does not.
    wrong = skopeo.run("inspect", "--tls-verify=false", "--creds", "ci:wrong",
                       f"docker://{server.host}/mig/app:v1", check=False)
    assert wrong.returncode != 0


@pytest.mark.parametrize("kind", ["s3", "az"])
def test_a_data_dir_moves_into_postgresql_and_object_storage_and_serves_the_same(
    kind: str, source: Source, object_storage: Callable[[str], Emulator], postgres_cluster: PostgresCluster,
    tmp_path: Path,
) -> None:
    emulator = object_storage(kind)
    env = emulator_env(emulator)
    database, storage = postgres_cluster.database(), emulator.new_url()
    done = migrate("--from-data-dir", str(source.data_dir), "--to-metadata", database, "--to-storage", storage,
                   env=env)
    first = report(done)
    assert done.stderr == "", "-o json prints no progress"
    blobs = len(list((source.data_dir / "blobs").rglob("*/*/*")))
    assert first["blobs"]["copied"] == blobs and first["blobs"]["present"] == 0
    found = first["verification"]
    assert found["ok"] is True
    assert found["source"] == found["destination"]
    assert found["source"]["repositories"] == 3 and found["source"]["tokens"] == 1
    assert found["source"]["auth_version"] == found["destination"]["auth_version"] > 0

    again = report(migrate("--from-data-dir", str(source.data_dir), "--to-metadata", database, "--to-storage",
                           storage, env=env))
    assert (again["blobs"]["copied"], again["blobs"]["present"]) == (0, blobs), "a second run sends nothing"
    assert again["verification"]["ok"] is True

    with served(tmp_path / "serve", source, database, storage, env) as server:
        check_registry(server, source, tmp_path)
        # New rows get ids after the migrated ones (PostgreSQL's counters were moved past them), and the id of
        # the token deleted at the source is not handed out again.
        push(make_image(seed=f"after-{kind}", layer_size=100), server.url, "mig/new", tag="v1", auth=TEST_USER)
    done = subprocess.run([sys.executable, "-m", "dockyard", "token", "create", "after", "--scope",
                           "mig/new:content/read", "--metadata-url", database], capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    name = database.rsplit("/", 1)[1]
    assert postgres_cluster.sql("SELECT id, name FROM tokens ORDER BY id", name).split() == ["1|ci", "3|after"]
    assert postgres_cluster.sql("SELECT id FROM repositories WHERE name = 'mig/new'", name).strip() == "4"


def test_migrating_back_from_postgresql_and_s3_to_a_data_dir_gives_the_same_registry(
    source: Source, object_storage: Callable[[str], Emulator], postgres_cluster: PostgresCluster, tmp_path: Path,
) -> None:
    emulator = object_storage("s3")
    env = emulator_env(emulator)
    database, storage = postgres_cluster.database(), emulator.new_url()
    migrate("--from-data-dir", str(source.data_dir), "--to-metadata", database, "--to-storage", storage, env=env)
    back = tmp_path / "back"
    done = report(migrate("--from-metadata", database, "--from-storage", storage, "--to-metadata",
                          f"sqlite:///{back}/metadata.db", "--to-storage", str(back), env=env))
    assert done["verification"]["ok"] is True

    # The round trip is the registry it started from, row for row (compared by the migration's own check) ...
    same = report(migrate("--verify-only", "--from-data-dir", str(source.data_dir), "--to-data-dir", str(back)))
    assert same["verification"]["ok"] is True and same["verification"]["mismatch_count"] == 0
    # ... with the token ids kept and never handed out again (the deleted token's id included).
    assert rows_of(back / "metadata.db", "SELECT id, name FROM tokens") == rows_of(
        source.data_dir / "metadata.db", "SELECT id, name FROM tokens")
    assert rows_of(back / "metadata.db", "SELECT seq FROM sqlite_sequence WHERE name = 'tokens'") == [(2,)]
    with served(tmp_path / "serve", source, f"sqlite:///{back}/metadata.db", str(back), {}) as server:
        check_registry(server, source, tmp_path)


def test_a_second_run_picks_up_what_changed_at_the_source(source: Source, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(source.data_dir, src)
    dest = tmp_path / "dest"
    migrate("--from-data-dir", str(src), "--to-data-dir", str(dest))
    later, moved = make_image(seed="mig-later", layer_size=2000), make_image(seed="mig-moved", layer_size=2000)
    with DockyardServer(tmp_path / "serve", data_dir=src) as server:
        push(later, server.url, "mig/app", tag="v2")
        push(moved, server.url, "mig/hidden", tag="v1")
    second = report(migrate("--from-data-dir", str(src), "--to-data-dir", str(dest)))
    new_blobs = {b.digest for b in later.all_blobs() + moved.all_blobs()}
    assert second["blobs"]["copied"] == len(new_blobs) and second["blobs"]["present"] > 0
    assert second["verification"]["ok"] is True
    tags = set(rows_of(dest / "metadata.db", "SELECT t.name, t.digest FROM tags t JOIN repositories r"
                                             " ON r.id = t.repo_id WHERE r.name LIKE 'mig/%'"))
    assert ("v2", later.digest) in tags and ("v1", moved.digest) in tags, "a new tag arrives, a moved tag moves"


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A data dir holding eight 12 MiB blobs (pushed through ``dockyard serve``), and their digests."""
    root = tmp_path_factory.mktemp("migrate-big")
    data = root / "data"
    with DockyardServer(root / "serve", data_dir=data) as server, httpx.Client(timeout=60) as http:
        digests = [upload_blob(http, server.url, "big/blobs", random_bytes(12 * 1024 * 1024, seed=i))
                   for i in range(8)]
    return data, digests


def start_migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dockyard", "migrate", *args, "-o", "json"],
                            env={**subprocess_env(), **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def interrupt_when(run: subprocess.Popen[bytes], ready: Callable[[], bool], sig: signal.Signals) -> bytes:
    """Send ``sig`` to the run as soon as ``ready()``; its standard error."""
    try:
        deadline = time.monotonic() + 120
        while not ready() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.poll() is None, "the run must still be going when it is interrupted"
        os.kill(run.pid, sig)
        return run.communicate(timeout=60)[1]
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


def test_ctrl_c_stops_cleanly_and_the_next_run_continues(big_source: tuple[Path, list[str]], tmp_path: Path) -> None:
    data, digests = big_source
    dest = tmp_path / "dest"
    args = ["--from-data-dir", str(data), "--to-data-dir", str(dest), "--jobs", "2"]

    def landed() -> int:
        return len(list((dest / "blobs").rglob("*/*/*"))) if (dest / "blobs").exists() else 0

    run = start_migrate(*args)
    stderr = interrupt_when(run, lambda: landed() >= 1, signal.SIGINT)
    assert (run.returncode, stderr.decode().strip().splitlines()[-1]) == (130, "dockyard: interrupted")
    assert list((dest / "uploads").iterdir()) == [], "no upload session is left behind"
    before = landed()
    resumed = report(migrate(*args))
    assert (resumed["blobs"]["present"], resumed["blobs"]["copied"]) == (before, len(digests) - before)
    assert resumed["verification"]["ok"] is True


def test_an_interrupted_run_resumes_and_sends_no_blob_twice(
    big_source: tuple[Path, list[str]], object_storage: Callable[[str], Emulator], postgres_cluster: PostgresCluster,
) -> None:
    data, digests = big_source
    emulator = object_storage("s3")
    env = emulator_env(emulator)
    database, storage = postgres_cluster.database(), emulator.new_url()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        store = open_object_store(parse_object_url(storage))

    def landed() -> int:
        return sum(len(page) for page in obstore.list(store, "blobs/"))

    args = ["--from-data-dir", str(data), "--to-metadata", database, "--to-storage", storage, "--jobs", "1"]
    interrupt_when(start_migrate(*args, env=env), lambda: landed() >= 2, signal.SIGKILL)
    before = landed()
    assert 2 <= before < len(digests)

    resumed = report(migrate(*args, env=env))
    assert resumed["blobs"]["present"] == before
    assert resumed["blobs"]["copied"] == len(digests) - before, "only the blobs not yet there are sent"
    assert resumed["verification"]["ok"] is True
    assert landed() == len(digests)


def test_a_corrupted_source_blob_fails_the_migration_by_name(source: Source, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(source.data_dir, src)
    layer = source.repos["mig/locked"].all_blobs()[-1].digest
    path = blob_file(src, layer)
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    path.write_bytes(bytes(damaged))

    done = migrate("--from-data-dir", str(src), "--to-data-dir", str(tmp_path / "dest"), check=False)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert layer in done.stderr and "does not match its digest" in done.stderr
    assert not blob_file(tmp_path / "dest", layer).exists()
    assert rows_of(tmp_path / "dest" / "metadata.db", "SELECT COUNT(*) FROM manifests") == [(0,)], \
        "no metadata is copied while a blob failed"
    assert report(done)["blobs"]["failed"]


def test_a_destination_holding_another_registry_is_refused_unless_merging(source: Source, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with DockyardServer(tmp_path / "serve", data_dir=dest) as server:
        push(make_image(seed="other", layer_size=100), server.url, "other/thing", tag="v1")
    done = migrate("--from-data-dir", str(source.data_dir), "--to-data-dir", str(dest), check=False)
    assert done.returncode == 1
    assert "another registry's data (repository other/thing is not in the source)" in done.stderr
    assert "--merge" in done.stderr
    assert rows_of(dest / "metadata.db", "SELECT name FROM repositories") == [("other/thing",)]

    merged = report(migrate("--from-data-dir", str(source.data_dir), "--to-data-dir", str(dest), "--merge"))
    assert merged["verification"]["ok"] is True
    assert merged["verification"]["extra"]["repositories"] == 1
    names = {row[0] for row in rows_of(dest / "metadata.db", "SELECT name FROM repositories")}
    assert names == {"other/thing", "mig/app", "mig/locked", "mig/hidden"}


def test_verify_only_finds_a_damaged_destination(source: Source, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    migrate("--from-data-dir", str(source.data_dir), "--to-data-dir", str(dest))
    assert report(migrate("--verify-only", "--from-data-dir", str(source.data_dir), "--to-data-dir",
                          str(dest)))["verification"]["ok"] is True

    layer = source.repos["mig/locked"].all_blobs()[-1].digest
    blob_file(dest, layer).unlink()
    with contextlib.closing(sqlite3.connect(dest / "metadata.db")) as conn, conn:
        conn.execute("UPDATE tags SET write_enabled = 1 WHERE name = 'stable'")
    done = migrate("--verify-only", "--from-data-dir", str(source.data_dir), "--to-data-dir", str(dest),
                   check=False)
    assert done.returncode == 1
    found = report(done)["verification"]
    assert found["ok"] is False and found["mismatch_count"] == 2
    assert "tag mig/locked:stable differs at the destination (write_enabled)" in found["mismatches"]
    assert f"blob {layer} is missing at the destination" in found["mismatches"]
    assert "verification failed" in done.stderr and "(and 1 more)" in done.stderr
    assert blob_file(source.data_dir, layer).exists(), "the source is only read"


def test_every_table_of_the_schema_is_moved_or_deliberately_left() -> None:
    from dockyard.server.migrate import rows
    from dockyard.server.storage import tables

    moved = {kind.table.name for kind in rows.KINDS}
    assert set(tables.metadata.tables) == moved | set(rows.NOT_MOVED), \
        "a new table needs a rows.Kind (or a reason in rows.NOT_MOVED)"


def test_bad_invocations_are_one_line_errors(source: Source, tmp_path: Path) -> None:
    half = migrate("--from-data-dir", str(source.data_dir), "--to-metadata", "sqlite:///x.db", check=False)
    assert (half.returncode, half.stderr.strip()) == (
        2, "dockyard: error: give --to-metadata and --to-storage (or --to-data-dir DIR)")
    nothing = migrate("--from-data-dir", str(tmp_path / "none"), "--to-data-dir", str(tmp_path / "d"), check=False)
    assert nothing.returncode == 1 and "there is no database at" in nothing.stderr
    assert not (tmp_path / "none").exists(), "a missing source is not created"
    bad = migrate("--from-data-dir", str(source.data_dir), "--to-metadata", "mysql://x/y", "--to-storage",
                  str(tmp_path / "d"), check=False)
    assert bad.returncode == 1 and "--to-metadata" in bad.stderr and "Traceback" not in bad.stderr
    unchecked = migrate("--verify-only", "--from-data-dir", str(source.data_dir), "--to-data-dir",
                        str(tmp_path / "never"), check=False)
    assert unchecked.returncode == 1 and "there is no database at" in unchecked.stderr
    assert not (tmp_path / "never").exists(), "--verify-only creates nothing"


def test_rows_cross_many_small_batches(source: Source, tmp_path: Path) -> None:
    """Batch edges (the last partial batch, repository ids known across batches) with two rows per batch."""
    from dockyard.server.migrate import rows

    saved = {kind: kind.batch for kind in rows.KINDS}
    try:
        for kind in rows.KINDS:
            object.__setattr__(kind, "batch", 2)  # frozen: set for this test only, restored below
        done = report(migrate("--from-data-dir", str(source.data_dir), "--to-data-dir", str(tmp_path / "dest")))
    finally:
        for kind, size in saved.items():
            object.__setattr__(kind, "batch", size)
    assert done["verification"]["ok"] is True
    assert done["metadata"]["blob_links"] == done["verification"]["source"]["blob_links"] > 2
    assert done["metadata"]["tags"] == done["verification"]["source"]["tags"] > 2


class _GatedUploads(FileUploadStore):
    """A real upload store whose ``create`` waits for the test to let it finish."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, FileBlobStore(root))
        self.gate = threading.Event()

    def create(self, repository: str) -> UploadState:
        self.gate.wait(10)
        return super().create(repository)


def test_a_session_created_after_its_copy_was_interrupted_is_removed(tmp_path: Path) -> None:
    uploads = _GatedUploads(tmp_path)

    async def interrupt_while_creating() -> None:
        opening = asyncio.ensure_future(_open_session(uploads))
        await asyncio.sleep(0.05)  # the worker thread is inside create()
        opening.cancel()
        uploads.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await opening

    asyncio.run(interrupt_while_creating())  # returns once the worker thread is done too
    assert list(uploads.root.iterdir()) == []
