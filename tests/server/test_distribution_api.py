"""``dockyard serve``: the OCI Distribution 1.1 API (/v2) over raw HTTP, endpoint by endpoint."""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.support.images import (
    make_artifact,
    make_image,
    make_index,
    make_multiarch_index,
    make_nested_index,
    push,
    random_bytes,
    upload_blob,
)
from tests.support.inprocess import InProcessServer
from tests.support.servers import DockyardServer

pytestmark = pytest.mark.backends


@pytest.fixture
def http(dockyard_app: InProcessServer) -> Iterator[httpx.Client]:
    with dockyard_app.client(timeout=30.0) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """The response is ``status`` with an OCI error body whose first code is ``code``."""
    assert response.status_code == status, response.text
    body = response.json()
    error = body["errors"][0]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert "detail" in error
    return error


def start_upload(http: httpx.Client, repo: str) -> str:
    response = http.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/"), "Location must be relative"
    return location


# -- base, pull ---------------------------------------------------------------------------------------------------


def test_base_endpoint(http: httpx.Client) -> None:
    response = http.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unknown_endpoint_has_oci_error_body(http: httpx.Client) -> None:
    assert_error(http.get("/nothing/here"), 404, "NOT_FOUND")
    assert_error(http.request("PATCH", "/v2/_catalog"), 405, "UNSUPPORTED")


def test_monolithic_post_with_digest(http: httpx.Client) -> None:
    repo = unique("mono")
    data = random_bytes(70_000, 1)
    digest = compute_digest(data)
    response = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    head = http.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(data)
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.content == b""
    got = http.get(f"/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200 and got.content == data


def test_post_then_put_and_empty_blob(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("put")
    data = random_bytes(5000, 2)
    digest = upload_blob(http, dockyard_app.url, repo, data)
    assert http.get(f"/v2/{repo}/blobs/{digest}").content == data
    empty = upload_blob(http, dockyard_app.url, repo, b"")
    got = http.get(f"/v2/{repo}/blobs/{empty}")
    assert got.status_code == 200 and got.content == b""
    assert_error(http.get(f"/v2/{repo}/blobs/{empty}", headers={"Range": "bytes=0-0"}), 416, "RANGE_INVALID")


def test_chunked_upload_with_status_and_out_of_order_chunk(http: httpx.Client) -> None:
    repo = unique("chunked")
    data = random_bytes(300_000, 3)
    digest = compute_digest(data)
    location = start_upload(http, repo)
    first = http.patch(location, content=data[:100_000], headers={"Content-Range": "0-99999"})
    assert first.status_code == 202, first.text
    assert first.headers["Range"] == "0-99999"
    location = first.headers["Location"]
    status = http.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-99999"
    assert status.headers["Docker-Upload-UUID"] in location
    # A chunk that does not start at the current offset: 416 and nothing appended.
    skipped = http.patch(location, content=data[150_000:200_000], headers={"Content-Range": "150000-199999"})
    assert_error(skipped, 416, "RANGE_INVALID")
    assert skipped.headers["Range"] == "0-99999"
    # A chunk without Content-Range (streamed, as Microsoft's SDK sends them) appends at the end.
    second = http.patch(location, content=data[100_000:200_000], headers={"Content-Type": "application/octet-stream"})
    assert second.status_code == 202
    assert second.headers["Range"] == "0-199999"
    done = http.put(
        location, params={"digest": digest}, content=data[200_000:], headers={"Content-Range": "200000-299999"}
    )
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    assert http.get(f"/v2/{repo}/blobs/{digest}").content == data
    assert_error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_chunk_min_length_header_and_cancel(http: httpx.Client) -> None:
    repo = unique("cancel")
    response = http.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    assert int(response.headers["OCI-Chunk-Min-Length"]) >= 0
    assert response.headers["Range"] == "0-0"
    location = response.headers["Location"]
    assert http.patch(location, content=b"abc").status_code == 202
    assert http.delete(location).status_code == 204
    assert_error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(http.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(http.put(location, params={"digest": compute_digest(b"abc")}), 404, "BLOB_UPLOAD_UNKNOWN")


def test_finish_with_wrong_or_missing_digest(http: httpx.Client) -> None:
    repo = unique("wrongdigest")
    location = start_upload(http, repo)
    assert http.patch(location, content=b"payload").status_code == 202
    assert_error(http.put(location), 400, "DIGEST_INVALID")
    wrong = compute_digest(b"something else")
    assert_error(http.put(location, params={"digest": wrong}), 400, "DIGEST_INVALID")
    assert http.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404


def test_cross_repository_mount(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(4096, 4)
    digest = upload_blob(http, dockyard_app.url, source, data)
    mounted = http.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert mounted.headers["Docker-Content-Digest"] == digest
    assert http.get(f"/v2/{target}/blobs/{digest}").content == data
    # The source does not hold the blob: a plain upload session instead (202).
    missing = compute_digest(b"not stored anywhere")
    fallback = http.post(f"/v2/{target}/blobs/uploads/", params={"mount": missing, "from": source})
    assert fallback.status_code == 202
    assert "/blobs/uploads/" in fallback.headers["Location"]
    assert http.delete(fallback.headers["Location"]).status_code == 204


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [
        ("bytes=0-9", 206, (0, 9)),
        ("bytes=990-", 206, (990, 999)),
        ("bytes=-5", 206, (995, 999)),
        ("bytes=900-5000", 206, (900, 999)),
        ("bytes=500-0", 416, None),
        ("bytes=1000-1010", 416, None),
        ("bytes=2000-", 416, None),
        ("bytes=abc", 416, None),
    ],
)
def test_blob_range_requests(http: httpx.Client, dockyard_app: InProcessServer, header: str, status: int,
                             expected: tuple[int, int] | None) -> None:
    repo = unique("range")
    data = random_bytes(1000, 5)
    digest = upload_blob(http, dockyard_app.url, repo, data)
    response = http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == status, response.text
    if expected is None:
        assert_error(response, 416, "RANGE_INVALID")
        assert response.headers["Content-Range"] == "bytes */1000"
        return
    start, end = expected
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/1000"
    assert int(response.headers["Content-Length"]) == end - start + 1
    assert response.content == data[start : end + 1]


def test_large_blob_streams_both_ways(http: httpx.Client) -> None:
    repo = unique("large")
    data = random_bytes(9 * 1024 * 1024 + 17, 6)
    digest = compute_digest(data)
    assert http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data).status_code == 201
    with http.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        assert int(response.headers["Content-Length"]) == len(data)
        received = b"".join(response.iter_bytes())
    assert received == data


def test_sha512_blobs_and_manifests(http: httpx.Client) -> None:
    repo = unique("sha512")
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = random_bytes(2048, 7)
    digests = {}
    for data in (config, layer):
        digest = compute_digest(data, "sha512")
        response = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == digest
        digests[data] = digest
    assert http.get(f"/v2/{repo}/blobs/{digests[layer]}").content == layer
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": digests[config], "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": digests[layer], "size": len(layer)}],
    }).encode()
    manifest_digest = compute_digest(manifest, "sha512")
    put = http.put(f"/v2/{repo}/manifests/{manifest_digest}", content=manifest,
                   headers={"Content-Type": mt.OCI_MANIFEST})
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == manifest_digest
    got = http.get(f"/v2/{repo}/manifests/{manifest_digest}")
    assert got.status_code == 200
    assert got.headers["Docker-Content-Digest"] == manifest_digest
    assert got.content == manifest


# -- manifests ----------------------------------------------------------------------------------------------------


def test_manifest_push_pull_byte_for_byte(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("manifest")
    image = make_image(seed="byte-for-byte")
    for blob in image.blobs:
        upload_blob(http, dockyard_app.url, repo, blob.data)
    # Unusual but valid JSON formatting must survive untouched.
    body = json.dumps(image.json, indent=3, sort_keys=True).encode() + b"\n"
    digest = compute_digest(body)
    put = http.put(f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest
    assert put.headers["Location"] == f"/v2/{repo}/manifests/{digest}"
    assert "OCI-Subject" not in put.headers
    for reference in ("v1", digest):
        got = http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": mt.MANIFEST_ACCEPT})
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["Content-Type"] == mt.OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == digest
        assert int(got.headers["Content-Length"]) == len(body)
        head = http.head(f"/v2/{repo}/manifests/{reference}")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["Content-Length"]) == len(body)
        assert head.headers["Docker-Content-Digest"] == digest


def test_percent_encoded_name_and_digest(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = f"team/{unique('encoded')}"
    image = make_image(seed="encoded")
    digest = push(image, dockyard_app.url, repo, tag="v1", client=http)
    encoded_name = repo.replace("/", "%2F")
    encoded_digest = digest.replace(":", "%3A")
    got = http.get(f"{dockyard_app.url}/v2/{encoded_name}/manifests/{encoded_digest}")
    assert got.status_code == 200 and got.content == image.body
    layer = image.blobs[1]
    blob = http.get(f"{dockyard_app.url}/v2/{encoded_name}/blobs/{layer.digest.replace(':', '%3A')}")
    assert blob.status_code == 200 and blob.content == layer.data
    assert http.get(f"/acr/v1/{encoded_name}/_manifests/{encoded_digest}").status_code == 200


@pytest.mark.parametrize("kind", ["docker", "docker-list", "oci-index", "nested-index", "artifact"])
def test_manifest_kinds_round_trip(http: httpx.Client, dockyard_app: InProcessServer, kind: str) -> None:
    repo = unique(kind)
    if kind == "docker":
        content = make_image(docker=True, seed=kind)
    elif kind == "docker-list":
        content = make_multiarch_index(docker=True, seed=kind)
    elif kind == "oci-index":
        content = make_multiarch_index(seed=kind)
    elif kind == "nested-index":
        content = make_nested_index(seed=kind)
    else:
        content = make_artifact({"a.txt": b"hello"}, artifact_type="application/vnd.example.thing")
    digest = push(content, dockyard_app.url, repo, tag="t", client=http)
    got = http.get(f"/v2/{repo}/manifests/t")
    assert got.status_code == 200
    assert got.content == content.body
    assert got.headers["Content-Type"] == content.media_type
    assert got.headers["Docker-Content-Digest"] == digest
    for child in content.walk():
        assert http.get(f"/v2/{repo}/manifests/{child.digest}").content == child.body


def test_manifest_naming_missing_blob_or_child(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("missing")
    image = make_image(seed="missing")
    upload_blob(http, dockyard_app.url, repo, image.blobs[0].data)  # config only
    response = http.put(f"/v2/{repo}/manifests/v1", content=image.body, headers={"Content-Type": mt.OCI_MANIFEST})
    error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"]["digest"] == image.blobs[1].digest
    index = make_index([make_image(seed="child-absent")])
    response = http.put(f"/v2/{repo}/manifests/idx", content=index.body, headers={"Content-Type": mt.OCI_INDEX})
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(http.get(f"/v2/{repo}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    # A blob of another repository does not count.
    other = unique("other")
    push(image, dockyard_app.url, other, tag="v1", client=http)
    response = http.put(f"/v2/{repo}/manifests/v1", content=image.body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_non_distributable_layer_and_inline_data_are_exempt(
    http: httpx.Client, dockyard_app: InProcessServer
) -> None:
    repo = unique("foreign")
    config = b'{"architecture":"amd64","os":"windows"}'
    config_digest = upload_blob(http, dockyard_app.url, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{
            "mediaType": mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP,
            "digest": compute_digest(b"foreign layer"),
            "size": 13,
            "urls": ["https://example.com/layer"],
        }],
    }).encode()
    response = http.put(f"/v2/{repo}/manifests/v1", content=manifest, headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 201, response.text
    # An artifact whose empty config is only inline (``data``), never uploaded.
    layer = upload_blob(http, dockyard_app.url, repo, b"file")
    artifact = json.dumps({
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example",
        "config": {"mediaType": mt.OCI_EMPTY, "digest": compute_digest(b"{}"), "size": 2,
                   "data": base64.b64encode(b"{}").decode()},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 4}],
    }).encode()
    response = http.put(f"/v2/{repo}/manifests/a1", content=artifact, headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 201, response.text


def test_manifest_invalid_inputs(http: httpx.Client) -> None:
    repo = unique("invalid")
    headers = {"Content-Type": mt.OCI_MANIFEST}
    assert_error(http.put(f"/v2/{repo}/manifests/v1", content=b"{not json", headers=headers), 400, "MANIFEST_INVALID")
    too_big = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    assert_error(http.put(f"/v2/{repo}/manifests/v1", content=too_big, headers=headers), 413, "MANIFEST_INVALID")
    body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}'
    assert_error(http.put(f"/v2/{repo}/manifests/v1", content=body, headers=headers), 400, "MANIFEST_INVALID")
    assert_error(http.put(f"/v2/{repo}/manifests/-bad", content=body, headers=headers), 400, "TAG_INVALID")
    wrong = compute_digest(b"other")
    assert_error(http.put(f"/v2/{repo}/manifests/{wrong}", content=body, headers=headers), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + "G" * 64, "x:y"])
def test_malformed_digest_is_400(http: httpx.Client, dockyard_app: InProcessServer, digest: str) -> None:
    repo = unique("baddigest")
    push(make_image(seed="baddigest"), dockyard_app.url, repo, tag="v1", client=http)
    assert_error(http.get(f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert_error(http.get(f"/v2/{repo}/manifests/{digest}"), 400, "DIGEST_INVALID")
    assert_error(http.delete(f"/v2/{repo}/manifests/{digest}"), 400, "DIGEST_INVALID")
    assert_error(http.get(f"/v2/{repo}/referrers/{digest}"), 400, "DIGEST_INVALID")
    assert_error(http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=b"x"), 400,
                 "DIGEST_INVALID")
    assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 400


@pytest.mark.parametrize("name", ["UPPER", "a..b", "%2e%2e", "a/%2e%2e/b", "-x", "a//b"])
def test_invalid_repository_names(http: httpx.Client, name: str) -> None:
    assert_error(http.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")


# -- content discovery --------------------------------------------------------------------------------------------


def test_tags_list_paging(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("tags")
    image = make_image(seed="tags")
    push(image, dockyard_app.url, repo, client=http)
    names = [f"t{i:02d}" for i in range(7)]
    for name in reversed(names):
        http.put(f"/v2/{repo}/manifests/{name}", content=image.body, headers={"Content-Type": mt.OCI_MANIFEST})
    full = http.get(f"/v2/{repo}/tags/list")
    assert full.json() == {"name": repo, "tags": names}
    assert "Link" not in full.headers
    seen: list[str] = []
    url = f"/v2/{repo}/tags/list?n=3"
    pages = 0
    while url:
        page = http.get(url)
        assert page.status_code == 200
        seen += page.json()["tags"]
        pages += 1
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
        if link:
            assert link.endswith('; rel="next"')
    assert seen == names and pages == 3
    after = http.get(f"/v2/{repo}/tags/list", params={"last": "t04", "n": 10})
    assert after.json()["tags"] == ["t05", "t06"]
    assert http.get(f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []
    assert_error(http.get(f"/v2/{repo}/tags/list", params={"n": "many"}), 400, "PAGINATION_NUMBER_INVALID")
    assert_error(http.get(f"/v2/{unique('nobody')}/tags/list"), 404, "NAME_UNKNOWN")


def test_catalog_paging(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    prefix = unique("cat")
    repos = [f"{prefix}/r{i}" for i in range(5)]
    image = make_image(seed="catalog")
    for repo in repos:
        push(image, dockyard_app.url, repo, tag="v1", client=http)
    everything = http.get("/v2/_catalog").json()["repositories"]
    assert everything == sorted(everything)
    assert set(repos) <= set(everything)
    seen: list[str] = []
    url = "/v2/_catalog?n=2"
    while url:
        page = http.get(url)
        names = page.json()["repositories"]
        assert len(names) <= 2
        seen += names
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert seen == everything
    start = http.get("/v2/_catalog", params={"last": repos[1], "n": 2}).json()["repositories"]
    assert start == [repos[2], repos[3]]


def test_referrers_and_oci_subject(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("referrers")
    image = make_image(seed="subject")
    subject_digest = push(image, dockyard_app.url, repo, tag="v1", client=http)
    sbom = make_artifact({"sbom.json": b"{}"}, artifact_type="application/vnd.example.sbom", subject=image,
                         annotations={"org.example": "yes"})
    sig = make_artifact({"sig": b"signature"}, artifact_type="application/vnd.example.sig", subject=image)
    for artifact in (sbom, sig):
        for blob in artifact.blobs:
            upload_blob(http, dockyard_app.url, repo, blob.data)
        put = http.put(f"/v2/{repo}/manifests/{artifact.digest}", content=artifact.body,
                       headers={"Content-Type": mt.OCI_MANIFEST})
        assert put.status_code == 201, put.text
        assert put.headers["OCI-Subject"] == subject_digest
    response = http.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(mt.OCI_INDEX)
    assert "OCI-Filters-Applied" not in response.headers
    index = response.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == mt.OCI_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {sbom.digest, sig.digest}
    assert by_digest[sbom.digest] == {
        "mediaType": mt.OCI_MANIFEST,
        "digest": sbom.digest,
        "size": sbom.size,
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"org.example": "yes"},
    }
    sig_type = "application/vnd.example.sig"
    filtered = http.get(f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": sig_type})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sig.digest]
    nothing = http.get(f"/v2/{repo}/referrers/{compute_digest(b'no such subject')}")
    assert nothing.status_code == 200 and nothing.json()["manifests"] == []


# -- content management -------------------------------------------------------------------------------------------


def test_delete_tag_then_manifest_then_blob(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("delete")
    image = make_image(seed="delete")
    digest = push(image, dockyard_app.url, repo, tag="v1", client=http)
    http.put(f"/v2/{repo}/manifests/v2", content=image.body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert http.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert_error(http.get(f"/v2/{repo}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert http.get(f"/v2/{repo}/manifests/{digest}").status_code == 200
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v2"]
    assert_error(http.delete(f"/v2/{repo}/manifests/v1"), 404, "TAG_UNKNOWN")
    assert http.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    assert_error(http.get(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(http.get(f"/v2/{repo}/manifests/v2"), 404, "MANIFEST_UNKNOWN")
    assert_error(http.delete(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    layer = image.blobs[1].digest
    assert http.delete(f"/v2/{repo}/blobs/{layer}").status_code == 202
    assert_error(http.get(f"/v2/{repo}/blobs/{layer}"), 404, "BLOB_UNKNOWN")
    assert_error(http.delete(f"/v2/{repo}/blobs/{layer}"), 404, "BLOB_UNKNOWN")


def test_unknown_things_are_404(http: httpx.Client) -> None:
    repo = unique("unknown")
    digest = compute_digest(b"nothing")
    assert_error(http.get(f"/v2/{repo}/manifests/latest"), 404, "NAME_UNKNOWN")
    assert_error(http.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


# -- server process behaviour --------------------------------------------------------------------------------------


def test_upload_session_survives_restart(fresh_dockyard: DockyardServer) -> None:
    fresh_dockyard.start()
    data = random_bytes(200_000, 8)
    digest = compute_digest(data)
    with httpx.Client(base_url=fresh_dockyard.url, timeout=30.0) as http:
        location = start_upload(http, "restart/me")
        assert http.patch(location, content=data[:120_000], headers={"Content-Range": "0-119999"}).status_code == 202
    fresh_dockyard.restart()
    with httpx.Client(base_url=fresh_dockyard.url, timeout=30.0) as http:
        status = http.get(location)
        assert status.status_code == 204
        assert status.headers["Range"] == "0-119999"
        done = http.put(location, params={"digest": digest}, content=data[120_000:],
                        headers={"Content-Range": "120000-199999"})
        assert done.status_code == 201, done.text
        assert http.get(f"/v2/restart/me/blobs/{digest}").content == data


def test_access_log_and_workers(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    with DockyardServer(tmp_path / "srv", "--workers", "2", "--access-log", str(log)) as server:
        image = make_image(seed="workers")
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
            digest = push(image, server.url, "multi/worker", tag="v1", client=http)
            for _ in range(10):
                assert http.get(f"/v2/multi/worker/manifests/{digest}").status_code == 200
            assert http.get("/v2/multi/worker/tags/list?n=1").status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(set(line) == {"method", "path", "query", "status"} for line in lines)
    gets = [x for x in lines if x["method"] == "GET" and x["path"] == f"/v2/multi/worker/manifests/{digest}"]
    assert len(gets) == 10 and all(x["status"] == 200 for x in gets)
    assert {"method": "GET", "path": "/v2/multi/worker/tags/list", "query": "n=1", "status": 200} in lines


def test_sigterm_stops_cleanly(fresh_dockyard: DockyardServer) -> None:
    server = fresh_dockyard.start()
    assert server.proc is not None
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        assert http.get("/v2/").status_code == 200  # leaves a pooled keep-alive connection open
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    assert "serving http://127.0.0.1:" in server.log()
    assert "Traceback" not in server.log()
