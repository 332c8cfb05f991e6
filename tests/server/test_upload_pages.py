"""``dockyard serve --upload-pages``: a received blob's pages leave the page cache once it is fsynced (``drop``,
the default), or stay cached (``keep``). ``fincore`` (util-linux) reports how much of a file is in memory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import DockyardServer, blob_file, subprocess_env

SIZE = 8 * 1024 * 1024


def resident_bytes(path: Path) -> int:
    """Bytes of ``path`` in the page cache."""
    fincore = shutil.which("fincore")
    assert fincore, "fincore (util-linux) is needed"
    out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def _push_twice(server: DockyardServer) -> list[Path]:
    """One blob in a monolithic ``POST ?digest=``, one as a ``PATCH`` then the committing ``PUT`` (skopeo's way);
    where they are stored."""
    first, second = os.urandom(SIZE), os.urandom(SIZE)
    digests = ["sha256:" + hashlib.sha256(data).hexdigest() for data in (first, second)]
    octets = {"Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        done = client.post("/v2/pages/blobs/uploads/", params={"digest": digests[0]}, content=first, headers=octets)
        assert done.status_code == 201, done.text
        started = client.post("/v2/pages/blobs/uploads/")
        assert started.status_code == 202, started.text
        patched = client.patch(started.headers["location"], content=second, headers=octets)
        assert patched.status_code == 202, patched.text
        done = client.put(patched.headers["location"], params={"digest": digests[1]})
        assert done.status_code == 201, done.text
    return [blob_file(server.data_dir, digest) for digest in digests]


@pytest.mark.parametrize(("flags", "cached"), [((), False), (("--upload-pages", "keep"), True)])
def test_a_committed_upload_leaves_the_page_cache_unless_kept(
    tmp_path: Path, flags: tuple[str, ...], cached: bool
) -> None:
    with DockyardServer(tmp_path / "srv", *flags) as server:
        paths = _push_twice(server)
        resident = [resident_bytes(path) for path in paths]
        with httpx.Client(base_url=server.url, timeout=30) as client:  # still served whole
            for path in paths:
                digest = f"sha256:{path.name}"
                assert hashlib.sha256(client.get(f"/v2/pages/blobs/{digest}").content).hexdigest() == path.name
    for amount in resident:
        assert (amount >= SIZE // 2) if cached else (amount < SIZE // 4)


def test_a_bad_upload_pages_value_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(tmp_path / "data"), "--upload-pages", "never"],
        capture_output=True, text=True, env=subprocess_env(), timeout=30, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --upload-pages must be drop or keep, not 'never'"
