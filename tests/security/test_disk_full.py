"""A full or read-only disk: writes answer 507 with an OCI body naming the cause, a failed chunk leaves nothing in
its session, a failed COMMIT is rolled back, and the server works again once the operator fixes the disk.

The data directory lives on a real small filesystem (a tmpfs mounted with ``size=``), filled with a file or
remounted read-only: no fault is simulated.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.oci import compute_digest
from tests.conftest import unique
from tests.server.test_bad_input import assert_error
from tests.support.images import make_image, push, random_bytes, upload_blob
from tests.support.peers import missing
from tests.support.servers import DockyardServer

#: Size of the test filesystem.
FS_SIZE = "8m"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``FS_SIZE`` mounted for this test (unmounted at the end)."""
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0700", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        missing("a tmpfs mount", f"run the tests as root: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def server(small_fs: Path, tmp_path: Path) -> Iterator[DockyardServer]:
    with DockyardServer(tmp_path / "server", data_dir=small_fs / "data") as started:
        yield started  # type: ignore[misc]


@pytest.fixture
def http(server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``directory`` with a file, leaving about ``leave`` bytes free; the file's path."""
    path = directory / "filler"
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(block)
        f.truncate(max(f.seek(0, os.SEEK_END) - leave, 0))
    return path


def remount(mount_point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)


def assert_storage_error(response: httpx.Response, condition: str) -> None:
    document = assert_error(response, 507, None)
    assert document is not None
    error = document["errors"][0]
    assert error["detail"] == {"condition": condition}, error
    assert condition in error["message"], error


def _upload_range(http: httpx.Client, location: str) -> str:
    status = http.get(location)
    assert status.status_code == 204, status.text
    return status.headers["Range"]


@pytest.mark.parametrize("chunk", [1_000_000, 6_000_000], ids=["one-batch", "pipelined-batches"])
def test_a_chunk_that_does_not_fit_is_rolled_back(
    server: DockyardServer, small_fs: Path, http: httpx.Client, chunk: int
) -> None:
    """Below 4 MiB a chunk is written in one batch after it arrived; above, in batches while it arrives."""
    repo = unique("full/chunk")
    data = random_bytes(100_000 + chunk, "full-chunk")
    start = http.post(f"/v2/{repo}/blobs/uploads/")
    location = start.headers["Location"]
    first = http.patch(location, content=data[:100_000])
    assert first.status_code == 202 and first.headers["Range"] == "0-99999"

    filler = fill(small_fs, leave=256 * 1024)
    assert_storage_error(http.patch(location, content=data[100_000:]), "ENOSPC")
    # Nothing of the failed chunk stays in the session: it holds exactly the first chunk.
    assert _upload_range(http, location) == "0-99999"
    assert (server.data_dir / "uploads" / location.rsplit("/", 1)[1] / "data").stat().st_size == 100_000

    filler.unlink()  # the operator frees space: the same chunk goes through, the blob commits
    retried = http.patch(location, content=data[100_000:])
    assert retried.status_code == 202 and retried.headers["Range"] == f"0-{len(data) - 1}"
    done = http.put(location, params={"digest": compute_digest(data)})
    assert done.status_code == 201, done.text
    assert http.get(f"/v2/{repo}/blobs/{compute_digest(data)}").content == data


def test_a_manifest_push_on_a_full_disk_is_507_and_the_server_recovers(
    server: DockyardServer, small_fs: Path, http: httpx.Client
) -> None:
    repo = unique("full/manifest")
    image = make_image(seed=repo, layers=1, layer_size=1000,
                       annotations={"padding": "x" * 400_000})  # a manifest the database must grow for
    for blob in image.blobs:
        upload_blob(http, server.url, repo, blob.data)
    filler = fill(small_fs)
    for _ in range(2):  # twice: the first failure must not leave a transaction open for the second
        response = http.put(f"/v2/{repo}/manifests/v1", content=image.body, headers={"Content-Type": image.media_type})
        assert_storage_error(response, "ENOSPC")
    sessions = set((server.data_dir / "uploads").iterdir())
    assert_storage_error(http.post(f"/v2/{repo}/blobs/uploads/"), "ENOSPC")
    assert set((server.data_dir / "uploads").iterdir()) == sessions  # no half-made session left behind
    filler.unlink()
    push(image, server.url, repo, tag="v1", client=http)
    assert http.get(f"/v2/{repo}/manifests/v1").content == image.body
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]


def test_a_read_only_filesystem_is_507_erofs_until_it_is_writable_again(small_fs: Path, tmp_path: Path) -> None:
    """Blobs and uploads on a filesystem of their own (symbolic links to it), remounted read-only; the database
    stays elsewhere, as Linux refuses to remount a filesystem read-only while a file on it is open for writing."""
    server = DockyardServer(tmp_path / "server")
    server.data_dir.mkdir(parents=True)
    for area in ("blobs", "uploads"):
        (small_fs / area).mkdir()
        (server.data_dir / area).symlink_to(small_fs / area)
    with server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        repo = unique("readonly")
        image = make_image(seed=repo, layers=1, layer_size=1000)
        push(image, server.url, repo, tag="v1", client=http)
        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        remount(small_fs, "ro")
        try:
            assert_storage_error(http.post(f"/v2/{repo}/blobs/uploads/"), "EROFS")
            assert_storage_error(http.patch(location, content=b"chunk"), "EROFS")
            assert http.get(f"/v2/{repo}/manifests/v1").content == image.body  # reads keep working
        finally:
            remount(small_fs, "rw")
        assert http.patch(location, content=b"chunk").status_code == 202
        push(make_image(seed=f"{repo}-other", layers=1, layer_size=1000), server.url, repo, tag="v2", client=http)
        assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1", "v2"]
