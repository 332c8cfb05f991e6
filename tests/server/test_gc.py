"""``dockyard gc``: unreferenced blobs and stale upload sessions go, everything a manifest needs stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from dockyard.oci import compute_digest
from tests.support.images import make_image, push, random_bytes, upload_blob
from tests.support.servers import DockyardServer, blob_file, run_gc, subprocess_env


def test_gc_removes_garbage_and_keeps_referenced_blobs(fresh_dockyard: DockyardServer) -> None:
    server = fresh_dockyard.start()
    data = fresh_dockyard.data_dir
    image = make_image(seed="gc-keep", layers=3)
    doomed = make_image(seed="gc-doomed", layers=1)
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        push(image, server.url, "gc/keep", tag="v1", client=http)
        push(doomed, server.url, "gc/doomed", tag="v1", client=http)
        unlinked = upload_blob(http, server.url, "gc/loose", random_bytes(3000, "unlinked"))
        assert http.delete(f"/v2/gc/loose/blobs/{unlinked}").status_code == 202
        young_orphan = upload_blob(http, server.url, "gc/loose", random_bytes(3000, "young"))
        session = http.post("/v2/gc/loose/blobs/uploads/").headers["Location"]
        assert http.patch(session, content=b"partial").status_code == 202
        assert http.delete(f"/v2/gc/doomed/manifests/{doomed.digest}").status_code == 202

    doomed_layer = doomed.blobs[1].digest
    for digest in (unlinked, young_orphan, doomed_layer, *(b.digest for b in image.blobs)):
        assert blob_file(data, digest).exists()

    # Dry run: reports, removes nothing.
    report = run_gc(data, "--dry-run", "--min-age", "0")
    assert unlinked in report and doomed_layer in report and "would remove" in report
    assert blob_file(data, unlinked).exists() and blob_file(data, doomed_layer).exists()

    # Default age threshold: only what nothing links any more goes; recent uploads stay.
    run_gc(data)
    assert not blob_file(data, unlinked).exists()
    assert blob_file(data, young_orphan).exists()
    assert blob_file(data, doomed_layer).exists()
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        assert http.get(session).status_code == 204

    # No age threshold: every unreferenced blob and the upload session go.
    report = run_gc(data, "--min-age", "0")
    assert f"upload {session.rsplit('/', 1)[1]}" in report
    for digest in (young_orphan, doomed_layer):
        assert not blob_file(data, digest).exists()
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        assert http.get(session).status_code == 404
        assert http.head(f"/v2/gc/loose/blobs/{young_orphan}").status_code == 404
        assert http.head(f"/v2/gc/doomed/blobs/{doomed_layer}").status_code == 404
        # The image is intact: manifest and every blob, byte for byte.
        assert http.get("/v2/gc/keep/manifests/v1").content == image.body
        for blob in image.blobs:
            got = http.get(f"/v2/gc/keep/blobs/{blob.digest}")
            assert got.status_code == 200 and compute_digest(got.content) == blob.digest
        # The server keeps accepting pushes of the collected content.
        push(doomed, server.url, "gc/doomed", tag="again", client=http)
        assert http.get("/v2/gc/doomed/manifests/again").status_code == 200


def test_gc_refuses_a_directory_that_is_not_a_registry(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert result.returncode != 0
    assert "not a dockyard data directory" in result.stderr
