"""``dockyard gc`` next to a running server: blobs of a push in flight are never collected from under it."""

from __future__ import annotations

import httpx

from dockyard.oci import compute_digest
from tests.support.gc_loop import RepeatedCollection
from tests.support.images import make_image, upload_blob
from tests.support.servers import DockyardServer, blob_file, run_gc


def upload_until_stored(http: httpx.Client, base_url: str, repo: str, data: bytes, digest: str) -> None:
    """A client's retry: an upload session collected between its ``POST`` and ``PUT`` is started again."""
    for _attempt in range(20):
        try:
            upload_blob(http, base_url, repo, data, digest)
            return
        except AssertionError as exc:
            assert "BLOB_UPLOAD_UNKNOWN" in str(exc), exc
    raise AssertionError(f"{digest} could not be uploaded")


def put_manifest(http: httpx.Client, repo: str, tag: str, body: bytes, media_type: str) -> httpx.Response:
    return http.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": media_type})


def test_blobs_uploaded_before_their_manifest_survive_gc(fresh_dockyard: DockyardServer) -> None:
    """The normal push order (blobs, then the manifest) with a collection in between, grace period on."""
    server = fresh_dockyard.start()
    image = make_image(seed="gc-in-flight", layers=3)
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for blob in image.blobs:
            upload_blob(http, server.url, "inflight/app", blob.data, blob.digest)
        report = run_gc(fresh_dockyard.data_dir)
        assert "removed 0 blob(s)" in report
        response = put_manifest(http, "inflight/app", "v1", image.body, image.media_type)
        assert response.status_code == 201, response.text
        for blob in image.blobs:
            got = http.get(f"/v2/inflight/app/blobs/{blob.digest}")
            assert got.status_code == 200 and compute_digest(got.content) == blob.digest


def test_manifest_push_after_its_blobs_were_collected_is_refused(fresh_dockyard: DockyardServer) -> None:
    """With no grace period the blobs go; the manifest push then fails cleanly instead of naming missing blobs."""
    server = fresh_dockyard.start()
    image = make_image(seed="gc-collected", layers=2)
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for blob in image.blobs:
            upload_blob(http, server.url, "collected/app", blob.data, blob.digest)
        run_gc(fresh_dockyard.data_dir, "--min-age", "0")
        refused = put_manifest(http, "collected/app", "v1", image.body, image.media_type)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
        assert http.get("/v2/collected/app/manifests/v1").status_code == 404
        # Pushing the blobs again makes the same manifest acceptable.
        for blob in image.blobs:
            upload_blob(http, server.url, "collected/app", blob.data, blob.digest)
        assert put_manifest(http, "collected/app", "v1", image.body, image.media_type).status_code == 201


def test_manifest_push_refuses_a_link_whose_file_is_gone(fresh_dockyard: DockyardServer) -> None:
    """A collection that died after deleting a file but before committing leaves a link behind: not a blob."""
    server = fresh_dockyard.start()
    image = make_image(seed="gc-halfway", layers=2)
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for blob in image.blobs:
            upload_blob(http, server.url, "halfway/app", blob.data, blob.digest)
        lost = image.blobs[-1].digest
        blob_file(fresh_dockyard.data_dir, lost).unlink()
        refused = put_manifest(http, "halfway/app", "v1", image.body, image.media_type)
        assert refused.status_code == 400, refused.text
        error = refused.json()["errors"][0]
        assert error["code"] == "MANIFEST_BLOB_UNKNOWN" and lost in refused.text
        upload_blob(http, server.url, "halfway/app", image.blobs[-1].data, lost)
        assert put_manifest(http, "halfway/app", "v1", image.body, image.media_type).status_code == 201
        assert compute_digest(http.get(f"/v2/halfway/app/blobs/{lost}").content) == lost


def test_pushes_racing_repeated_collections_never_leave_a_manifest_without_blobs(
    fresh_dockyard: DockyardServer,
) -> None:
    """``gc --min-age 0`` runs in a loop while images are pushed; every accepted manifest keeps all its blobs."""
    server = fresh_dockyard.start()
    data_dir = fresh_dockyard.data_dir
    accepted = []
    refused = 0
    collections = RepeatedCollection(lambda: run_gc(data_dir, "--min-age", "0"), join_timeout=120)
    with collections as gc_loop, httpx.Client(base_url=server.url, timeout=30.0) as http:
        for i in range(12):
            image = make_image(seed=f"gc-race-{i}", layers=2, layer_size=64 * 1024)
            for _attempt in range(20):
                for blob in image.blobs:
                    upload_until_stored(http, server.url, "race/app", blob.data, blob.digest)
                response = put_manifest(http, "race/app", f"v{i}", image.body, image.media_type)
                if response.status_code == 201:
                    accepted.append(image)
                    break
                assert response.status_code == 400, response.text
                assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
                refused += 1
            if len(gc_loop.runs) < 2:
                runs_before = len(gc_loop.runs)
                while len(gc_loop.runs) == runs_before and not gc_loop.failures:
                    gc_loop.stop.wait(0.05)
    assert not gc_loop.failures, gc_loop.failures
    assert len(gc_loop.runs) >= 2
    assert len(accepted) == 12, f"{refused} refusals"
    # One more collection after the dust settles: everything referenced stays, byte for byte.
    run_gc(data_dir, "--min-age", "0")
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for i, image in enumerate(accepted):
            assert http.get(f"/v2/race/app/manifests/v{i}").content == image.body
            for blob in image.blobs:
                got = http.get(f"/v2/race/app/blobs/{blob.digest}")
                assert got.status_code == 200 and compute_digest(got.content) == blob.digest
