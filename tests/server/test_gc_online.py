"""Garbage collection while the registry serves: each race between a collection and a push, closed.

The collection runs in this process on the data dir of a running ``dockyard serve`` (as ``dockyard gc`` does from
its own process). Its ``progress`` callback runs after the mark and the candidate listing and before the first
batch: what a client does there "arrived after the mark", and each batch must see it under the write lock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from dockyard.oci import compute_digest
from dockyard.oci.digest import Digest
from dockyard.server.storage.blobs import FileBlobStore, FileUploadStore
from dockyard.server.storage.metadata import SqliteMetadataStore
from dockyard.server.storage.protocols import MetadataStore
from tests.support.images import make_image, push, put_manifest, random_bytes, upload_blob
from tests.support.servers import DockyardServer, blob_file, subprocess_env

if TYPE_CHECKING:
    from dockyard.server.gc import GcReport


def sweep(stores: Stores, **options: Any) -> GcReport:
    """One collection on ``stores`` (:func:`dockyard.server.gc.sweep`)."""
    from dockyard.server.gc import sweep as collect

    return collect(stores.meta, stores.blobs, stores.uploads, **options)


class Stores:
    """The stores of a running server's data dir, opened by this process (as ``dockyard gc`` opens them)."""

    def __init__(self, data_dir: Path, blobs: FileBlobStore | None = None) -> None:
        self.meta: MetadataStore = SqliteMetadataStore(data_dir)
        self.blobs = blobs or FileBlobStore(data_dir)
        self.uploads = FileUploadStore(data_dir, self.blobs)

    def close(self) -> None:
        self.meta.close()


@pytest.fixture
def served(fresh_dockyard: DockyardServer) -> Iterator[tuple[DockyardServer, httpx.Client, Stores]]:
    server = fresh_dockyard.start()
    stores = Stores(fresh_dockyard.data_dir)
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield fresh_dockyard, http, stores
    stores.close()


def pulls_completely(http: httpx.Client, repo: str, reference: str, body: bytes, digests: list[str]) -> None:
    assert http.get(f"/v2/{repo}/manifests/{reference}").content == body
    for digest in digests:
        got = http.get(f"/v2/{repo}/blobs/{digest}")
        assert got.status_code == 200, (digest, got.text)
        assert compute_digest(got.content) == digest


def test_manifest_pushed_after_the_mark_keeps_its_blobs(served: tuple[DockyardServer, httpx.Client, Stores]) -> None:
    """The blobs are unreferenced when the mark reads the manifests; the push lands before the first batch, and
    the batch reads the manifests stored since the mark under the write lock: nothing it names goes."""
    server, http, stores = served
    image = make_image(seed="gc-online-late-manifest", layers=3)
    for blob in image.blobs:
        upload_blob(http, server.url, "late/app", blob.data, blob.digest)

    def push_manifest(line: str) -> None:
        put_manifest(http, server.url, "late/app", image, "v1")

    report = sweep(stores, min_age=0, progress=push_manifest)
    assert report.blobs == []
    pulls_completely(http, "late/app", "v1", image.body, [b.digest for b in image.blobs])


def test_upload_committed_during_the_sweep_keeps_its_blob(served: tuple[DockyardServer, httpx.Client, Stores]) -> None:
    """A blob file nothing links is a candidate; the same digest uploaded again (acknowledged 201) before its
    batch makes a fresh link, and the batch keeps the bytes."""
    server, http, stores = served
    data = random_bytes(5000, "gc-online-reupload")
    digest = upload_blob(http, server.url, "reup/app", data)
    assert http.delete(f"/v2/reup/app/blobs/{digest}").status_code == 202  # only the bytes remain: garbage

    def upload_again(line: str) -> None:
        upload_blob(http, server.url, "reup/app", data, digest)

    report = sweep(stores, min_age=0, progress=upload_again)
    assert digest not in report.blobs
    got = http.get(f"/v2/reup/app/blobs/{digest}")
    assert got.status_code == 200 and got.content == data


def test_mount_during_the_sweep_keeps_the_blob(served: tuple[DockyardServer, httpx.Client, Stores]) -> None:
    """An old unreferenced link is a candidate; a cross-repository mount from it before its batch links the blob
    anew in the target repository: the source's old link goes, the blob and the new link stay."""
    server, http, stores = served
    data = random_bytes(4000, "gc-online-mount")
    digest = upload_blob(http, server.url, "mount/source", data)
    time.sleep(0.3)  # older than the run (by more than its clock slack)

    def mount(line: str) -> None:
        mounted = http.post(f"/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source")
        assert mounted.status_code == 201, mounted.text

    report = sweep(stores, min_age=0, progress=mount)
    assert digest not in report.blobs
    assert http.head(f"/v2/mount/source/blobs/{digest}").status_code == 404
    got = http.get(f"/v2/mount/target/blobs/{digest}")
    assert got.status_code == 200 and got.content == data


def test_upload_session_written_during_the_run_is_kept(served: tuple[DockyardServer, httpx.Client, Stores]) -> None:
    """With no grace period an idle session goes, but one that received a chunk after the run started stays and
    finishes."""
    _server, http, stores = served
    idle = http.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    active = http.post("/v2/sessions/app/blobs/uploads/").headers["Location"]
    first, second = random_bytes(3000, "gc-online-s1"), random_bytes(3000, "gc-online-s2")
    assert http.patch(active, content=first).status_code == 202
    time.sleep(0.3)  # the sessions' last activity is before the run starts (by more than its clock slack)

    def write_chunk(line: str) -> None:
        answer = http.patch(active, content=second, headers={"Content-Range": f"{len(first)}-{2 * len(first) - 1}"})
        assert answer.status_code == 202, answer.text

    report = sweep(stores, min_age=0, progress=write_chunk)
    assert idle.rsplit("/", 1)[1] in report.uploads
    assert active.rsplit("/", 1)[1] not in report.uploads
    assert http.get(idle).status_code == 404
    digest = compute_digest(first + second)
    finished = http.put(active, params={"digest": digest})
    assert finished.status_code == 201, finished.text
    assert http.get(f"/v2/sessions/app/blobs/{digest}").content == first + second


class Crash(BaseException):
    """The process dies here (nothing after this point runs; the open transaction is never committed)."""


class CrashAfterDeletes(FileBlobStore):
    """The real file store, with the process dying right after a batch's files are deleted and before the commit:
    the moment no real peer can pick."""

    def delete_many(self, digests: list[Digest]) -> None:
        super().delete_many(digests)
        raise Crash


def test_crash_between_file_delete_and_commit_leaves_no_manifest_without_blobs(
    served: tuple[DockyardServer, httpx.Client, Stores],
) -> None:
    """The files go first, under the write lock; a crash before the commit leaves links without bytes, which no
    manifest names: the blob answers 404, a manifest naming it is refused, and the next run drops the links."""
    server, http, stores = served
    kept = make_image(seed="gc-online-crash-kept", layers=2)
    push(kept, server.url, "crash/app", "v1", client=http)
    orphan = make_image(seed="gc-online-crash-orphan", layers=1)
    for blob in orphan.blobs:
        upload_blob(http, server.url, "crash/app", blob.data, blob.digest)
    time.sleep(0.3)  # older than the run (by more than its clock slack)
    crashing = Stores(server.data_dir, CrashAfterDeletes(server.data_dir))
    try:
        with pytest.raises(Crash):
            sweep(crashing, min_age=0)
    finally:
        crashing.close()
    for blob in orphan.blobs:
        assert not blob_file(server.data_dir, blob.digest).exists()
        assert stores.meta.blob_links_of([blob.digest]) != []  # the link removal was rolled back
        assert http.head(f"/v2/crash/app/blobs/{blob.digest}").status_code == 404
    refused = http.put("/v2/crash/app/manifests/orphan", content=orphan.body,
                       headers={"Content-Type": orphan.media_type})
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    pulls_completely(http, "crash/app", "v1", kept.body, [b.digest for b in kept.blobs])

    sweep(stores, min_age=0)
    assert stores.meta.blob_links_of([b.digest for b in orphan.blobs]) == []
    pulls_completely(http, "crash/app", "v1", kept.body, [b.digest for b in kept.blobs])


def seed_unreferenced_links(data_dir: Path, count: int) -> None:
    """``count`` links to blobs no manifest names (old enough for any grace period), in one transaction."""
    meta = SqliteMetadataStore(data_dir)
    try:
        with meta.write():
            repo_id = meta.ensure_repository("seeded/garbage")
            for i in range(count):
                meta.link_blob(repo_id, compute_digest(f"seeded-{i}".encode()), 10)
    finally:
        meta.close()


def seeded_links_left(data_dir: Path) -> int:
    """How many of the seeded links a collection has not removed yet."""
    meta = SqliteMetadataStore(data_dir)
    try:
        with meta.read():
            repo = meta.repository("seeded/garbage")
            assert repo is not None
            return sum(1 for link in meta.blob_links() if link.repo_id == repo.id)
    finally:
        meta.close()


def test_a_push_completes_while_a_long_collection_runs(fresh_dockyard: DockyardServer) -> None:
    """``dockyard gc`` with many candidates holds the write lock one batch at a time: a push through the server
    is acknowledged while the collection is still running (it used to wait for the whole run), and a collection
    killed midway leaves it whole."""
    server = fresh_dockyard.start()
    seed_unreferenced_links(fresh_dockyard.data_dir, 60000)
    image = make_image(seed="gc-online-during", layers=2)
    gc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(fresh_dockyard.data_dir), "--min-age", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env(),
    )
    try:
        assert gc.stdout is not None
        first = gc.stdout.readline()  # the sweep starts once this line is out
        with httpx.Client(base_url=server.url, timeout=60.0) as http:
            push(image, server.url, "during/app", "v1", client=http)
            left = seeded_links_left(fresh_dockyard.data_dir)
            assert left > 0, f"the push waited for the whole collection: {first}"
            gc.kill()  # a crash midway: every batch so far is committed whole, the rest untouched
            gc.wait()
            pulls_completely(http, "during/app", "v1", image.body, [b.digest for b in image.blobs])
    finally:
        if gc.poll() is None:
            gc.kill()
            gc.wait()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--gc-interval", "soon", "--gc-interval: invalid duration 'soon'"),
    ("--gc-min-age", "-5", "--gc-min-age must be a duration of zero or more"),
])
def test_serve_refuses_a_malformed_gc_duration(tmp_path: Path, flag: str, value: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(tmp_path), flag, value],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1  # one line, no traceback
    assert message in result.stderr and "Traceback" not in result.stderr
