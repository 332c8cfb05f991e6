"""What ``dockyard serve`` keeps on disk stays correct and private.

A blob file that rotted on disk is replaced by the next verified upload of its digest, ``dockyard gc --verify``
finds and quarantines such files, and everything under the data directory is owner-only (0700 directories,
0600 files) whatever the umask the server was started with.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import unique
from tests.server.test_bad_input import assert_error
from tests.support.images import Content, make_image, push, upload_blob
from tests.support.servers import DockyardServer, blob_file, run_gc, subprocess_env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    with DockyardServer(tmp_path_factory.mktemp("integrity")) as started:
        yield started  # type: ignore[misc]


@pytest.fixture
def http(server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def _corrupt(path: Path) -> bytes:
    """Flip bytes in the middle of a file, keeping its size (what bit rot or a bad disk does)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))
    return bytes(data)


def _pushed(server: DockyardServer, http: httpx.Client) -> tuple[str, Content]:
    repo = unique("integrity")
    image = make_image(seed=repo, layers=2, layer_size=4000)
    push(image, server.url, repo, tag="v1", client=http)
    return repo, image


# -- a verified upload replaces a corrupt file ---------------------------------------------------------------------


@pytest.mark.parametrize("where", ["same-repository", "other-repository"])
def test_pushing_the_right_bytes_again_repairs_a_corrupt_blob(
    server: DockyardServer, http: httpx.Client, where: str
) -> None:
    repo, image = _pushed(server, http)
    layer = image.blobs[1]
    corrupt = _corrupt(blob_file(server.data_dir, layer.digest))
    assert http.get(f"/v2/{repo}/blobs/{layer.digest}").content == corrupt  # served as it is on disk
    target = repo if where == "same-repository" else unique("integrity/other")
    assert upload_blob(http, server.url, target, layer.data) == layer.digest
    assert blob_file(server.data_dir, layer.digest).read_bytes() == layer.data
    for name in {repo, target}:
        got = http.get(f"/v2/{name}/blobs/{layer.digest}")
        assert got.status_code == 200 and got.content == layer.data


def test_a_wrong_upload_does_not_touch_the_stored_blob(server: DockyardServer, http: httpx.Client) -> None:
    repo, image = _pushed(server, http)
    layer = image.blobs[1]
    start = http.post(f"/v2/{repo}/blobs/uploads/")
    response = http.put(start.headers["Location"], params={"digest": layer.digest}, content=layer.data[:-1])
    assert_error(response, 400, "DIGEST_INVALID")
    assert blob_file(server.data_dir, layer.digest).read_bytes() == layer.data


# -- gc --verify -----------------------------------------------------------------------------------------------


def _gc(data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(data_dir), *flags],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )


def test_gc_verify_quarantines_corrupt_blobs(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "server") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        repo, image = _pushed(server, http)
        config, bad, good = image.blobs
        path = blob_file(server.data_dir, bad.digest)
        corrupt = _corrupt(path)

        dry = _gc(server.data_dir, "--verify", "--dry-run")
        assert dry.returncode == 1, dry.stdout + dry.stderr
        assert f"corrupt blob {bad.digest}" in dry.stdout and path.read_bytes() == corrupt

        result = _gc(server.data_dir, "--verify")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"corrupt blob {bad.digest}" in result.stdout
        assert "corrupt blob(s) found" in result.stderr and "Traceback" not in result.stderr
        assert good.digest not in result.stdout and config.digest not in result.stdout
        quarantined = server.data_dir / "quarantine" / bad.digest.replace(":", "-")
        assert quarantined.read_bytes() == corrupt and not path.exists()
        # Nothing else was dropped: the manifest, its tag and the other blobs stay; the bad blob is missing.
        assert http.get(f"/v2/{repo}/manifests/v1").content == image.body
        assert http.get(f"/v2/{repo}/blobs/{good.digest}").content == good.data
        assert_error(http.get(f"/v2/{repo}/blobs/{bad.digest}"), 404, "BLOB_UNKNOWN")

        # Pushing the right bytes repairs it, and the next check finds nothing.
        upload_blob(http, server.url, repo, bad.data)
        assert http.get(f"/v2/{repo}/blobs/{bad.digest}").content == bad.data
        clean = run_gc(server.data_dir, "--verify")
        assert "corrupt" not in clean


# -- permissions ---------------------------------------------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)) or ".": stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_everything_in_the_data_dir_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    server = DockyardServer(tmp_path / "server")
    previous = os.umask(0)  # the most permissive umask: the server's own modes must decide
    try:
        server.start()
    finally:
        os.umask(previous)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            repo, _ = _pushed(server, http)
            # An upload session left open, so its directory and files exist.
            start = http.post(f"/v2/{repo}/blobs/uploads/")
            assert http.patch(start.headers["Location"], content=b"partial").status_code == 202
        modes = _modes(server.data_dir)
        names = set(modes)
        assert {"metadata.db", "metadata.db-wal", "metadata.db-shm"} <= names, names
        assert any(n.startswith("uploads/") and n.endswith("/data") for n in names), names
        assert any(n.startswith("blobs/sha256/") for n in names), names
        for name, mode in modes.items():
            is_dir = (server.data_dir / name).is_dir() if name != "." else True
            assert mode == (0o700 if is_dir else 0o600), f"{name} has mode {mode:04o}"
        assert "warning" not in server.log()
    finally:
        server.stop()


def test_a_data_dir_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared-data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    with DockyardServer(tmp_path / "server", data_dir=data_dir) as server:
        log = server.log()
    assert f"the data directory {data_dir} has mode 0755" in log
    assert "chmod 700" in log
