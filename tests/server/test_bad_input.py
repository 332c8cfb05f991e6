"""Bad input to ``dockyard serve``: the right 4xx with an OCI error body, the server keeps serving, nothing changes.

Each test records what the registry holds (catalog, tags and the manifests they name, the ACR manifest list of
the repositories involved, and the blob files on disk) before sending the bad request, and compares it after.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import TEST_USER, unique
from tests.support.images import Content, make_image, make_index, push, random_bytes
from tests.support.servers import DockyardServer

#: The error codes of the distribution-spec (plus the ones ACR adds); a body must use one of these.
SPEC_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "TAG_INVALID",
    "TAG_UNKNOWN",
    "RANGE_INVALID",
    "PAGINATION_NUMBER_INVALID",
}


# -- observing the registry ---------------------------------------------------------------------------------------


@dataclass
class Seed:
    """A repository holding image ``v1`` (tag) and the server it lives on."""

    server: DockyardServer
    repo: str
    image: Content
    auth: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"Seed({self.server.url}, {self.repo!r})"


def _client(seed: Seed) -> httpx.Client:
    return httpx.Client(base_url=seed.server.url, auth=seed.auth, headers={"Accept": mt.MANIFEST_ACCEPT})


def registry_state(seed: Seed, *repos: str) -> dict[str, Any]:
    """What the registry holds, as far as bad requests could touch it."""
    with _client(seed) as http:
        catalog = http.get("/v2/_catalog")
        assert catalog.status_code == 200, catalog.text
        state: dict[str, Any] = {"catalog": catalog.json()["repositories"]}
        for repo in {seed.repo, *repos}:
            tags = http.get(f"/v2/{repo}/tags/list")
            tag_names = tags.json().get("tags") or [] if tags.status_code == 200 else None
            manifests = http.get(f"/acr/v1/{repo}/_manifests")
            state[repo] = {
                "tags_status": tags.status_code,
                "tags": {
                    t: http.head(f"/v2/{repo}/manifests/{t}").headers.get("Docker-Content-Digest")
                    for t in tag_names or []
                },
                "manifests": sorted(m["digest"] for m in manifests.json().get("manifests") or [])
                if manifests.status_code == 200
                else manifests.status_code,
            }
    blob_root = seed.server.data_dir / "blobs"
    state["blob_files"] = sorted(str(p.relative_to(blob_root)) for p in blob_root.rglob("*") if p.is_file())
    return state


def assert_still_serving(seed: Seed) -> None:
    with _client(seed) as http:
        assert http.get("/v2/").status_code == 200
        got = http.get(f"/v2/{seed.repo}/manifests/v1")
        assert got.status_code == 200 and got.content == seed.image.body


@contextmanager
def unchanged(seed: Seed, *repos: str) -> Iterator[None]:
    """Assert the registry state is the same after the block, and the server still answers."""
    before = registry_state(seed, *repos)
    yield
    assert_still_serving(seed)
    assert registry_state(seed, *repos) == before


def assert_error(
    response: httpx.Response | tuple[int, bytes], statuses: int | set[int], codes: str | set[str] | None
) -> dict[str, Any] | None:
    """The response is one of ``statuses`` with an OCI error body whose first code is in ``codes``.

    ``codes=None`` accepts any code (the ACR metadata API has its own); HEAD responses have no body to check.
    """
    if isinstance(response, httpx.Response):
        status, body, method = response.status_code, response.content, response.request.method
    else:
        (status, body), method = response, "GET"
    statuses = {statuses} if isinstance(statuses, int) else statuses
    assert status in statuses, f"status {status} not in {statuses}: {body[:500]!r}"
    if method == "HEAD":
        return None
    document = json.loads(body)
    errors = document["errors"]
    assert isinstance(errors, list) and errors, document
    assert isinstance(errors[0].get("code"), str) and isinstance(errors[0].get("message"), str), document
    if codes is not None:
        wanted = {codes} if isinstance(codes, str) else codes
        assert wanted <= SPEC_CODES, wanted
        assert errors[0]["code"] in wanted, f"code {errors[0]['code']} not in {wanted}: {document}"
    return document


def raw_request(server: DockyardServer, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send ``path`` exactly as given (no client-side normalisation of ``..`` or ``%2e``)."""
    conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed(dockyard_server: DockyardServer) -> Seed:
    repo = unique("bad/seed")
    image = make_image(seed=repo, layers=2, layer_size=2000)
    push(image, dockyard_server.url, repo, tag="v1")
    return Seed(dockyard_server, repo, image)


@pytest.fixture
def http(seed: Seed) -> Iterator[httpx.Client]:
    with _client(seed) as client:
        yield client


def _start_upload(http: httpx.Client, repo: str) -> str:
    response = http.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["Location"]


# -- manifests ----------------------------------------------------------------------------------------------------


MALFORMED = {
    "truncated-json": b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {',
    "not-json": b"this is not json at all",
    "json-array": b"[1, 2, 3]",
    "json-string": b'"manifest"',
    "empty": b"",
    "binary": bytes(range(256)),
    "schema-version-1": json.dumps({"schemaVersion": 1, "mediaType": mt.OCI_MANIFEST, "config": {}}).encode(),
    "no-config": json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": []}).encode(),
    "config-not-object": json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": "x"}).encode(),
    "layers-not-list": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": compute_digest(b"{}"), "size": 2},
            "layers": {"a": 1},
        }
    ).encode(),
    "bad-layer-digest": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": compute_digest(b"{}"), "size": 2},
            "layers": [{"mediaType": mt.OCI_LAYER, "digest": "sha256:nothex", "size": 1}],
        }
    ).encode(),
    "negative-size": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": compute_digest(b"{}"), "size": -2},
            "layers": [],
        }
    ).encode(),
    "index-without-manifests": json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest(seed: Seed, http: httpx.Client, case: str) -> None:
    body = MALFORMED[case]
    content_type = mt.OCI_INDEX if case.startswith("index") else mt.OCI_MANIFEST
    with unchanged(seed):
        for reference in ("v1", "fresh-tag", compute_digest(body)):
            response = http.put(f"/v2/{seed.repo}/manifests/{reference}", content=body,
                                 headers={"Content-Type": content_type})
            assert_error(response, 400, "MANIFEST_INVALID")


def test_manifest_media_type_contradicting_content_type(seed: Seed, http: httpx.Client) -> None:
    with unchanged(seed):
        response = http.put(f"/v2/{seed.repo}/manifests/v1", content=seed.image.body,
                            headers={"Content-Type": mt.OCI_INDEX})
        assert_error(response, 400, "MANIFEST_INVALID")


def test_manifest_digest_reference_mismatch(seed: Seed, http: httpx.Client) -> None:
    """PUT by digest with a body that hashes to something else."""
    other = compute_digest(b"not this manifest")
    with unchanged(seed):
        response = http.put(f"/v2/{seed.repo}/manifests/{other}", content=seed.image.body,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})


def test_manifest_naming_missing_blobs(seed: Seed, http: httpx.Client) -> None:
    missing_layer = make_image(seed=f"{seed.repo}-missing-layer", layers=2, layer_size=100)
    # upload everything but the last layer
    for blob in missing_layer.blobs[:-1]:
        push_blob(http, seed.repo, blob.data)
    missing_config = make_image(seed=f"{seed.repo}-missing-config", layers=1, layer_size=100)
    push_blob(http, seed.repo, missing_config.blobs[1].data)
    with unchanged(seed):
        for image in (missing_layer, missing_config):
            for reference in ("v1", "other", image.digest):
                response = http.put(f"/v2/{seed.repo}/manifests/{reference}", content=image.body,
                                    headers={"Content-Type": image.media_type})
                assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_naming_missing_child(seed: Seed, http: httpx.Client) -> None:
    absent = make_image(seed=f"{seed.repo}-absent-child", architecture="arm64")
    index = make_index([seed.image, absent])
    with unchanged(seed):
        response = http.put(f"/v2/{seed.repo}/manifests/multi", content=index.body,
                            headers={"Content-Type": mt.OCI_INDEX})
        assert_error(response, 400, {"MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"})


def test_manifest_blobs_of_another_repository_do_not_count(seed: Seed, http: httpx.Client) -> None:
    other = unique("bad/other")
    with unchanged(seed, other):
        response = http.put(f"/v2/{other}/manifests/v1", content=seed.image.body,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_manifest_over_4_mib(seed: Seed, http: httpx.Client) -> None:
    document = seed.image.json
    document["annotations"] = {"padding": "x" * (4 * 1024 * 1024)}
    body = json.dumps(document).encode()
    assert len(body) > mt.MAX_MANIFEST_SIZE
    with unchanged(seed):
        response = http.put(f"/v2/{seed.repo}/manifests/huge", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, {400, 413}, {"MANIFEST_INVALID", "SIZE_INVALID"})
        # the same without Content-Length (chunked transfer): the limit still holds
        chunks = iter([body[: 1024 * 1024], body[1024 * 1024 :]])
        response = http.put(f"/v2/{seed.repo}/manifests/huge", content=chunks,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, {400, 413}, {"MANIFEST_INVALID", "SIZE_INVALID"})


def test_manifest_of_exactly_4_mib_is_accepted(seed: Seed, http: httpx.Client) -> None:
    """The boundary the previous test checks from above: 4 MiB itself is allowed."""
    repo = unique("bad/four-mib")
    push(seed.image, seed.server.url, repo)
    document = seed.image.json
    document["annotations"] = {"padding": ""}
    base = len(json.dumps(document, separators=(",", ":")).encode())
    document["annotations"]["padding"] = "x" * (mt.MAX_MANIFEST_SIZE - base)
    body = json.dumps(document, separators=(",", ":")).encode()
    assert len(body) == mt.MAX_MANIFEST_SIZE
    response = http.put(f"/v2/{repo}/manifests/big", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert http.get(f"/v2/{repo}/manifests/big").content == body


BAD_TAGS = ["-leading-dash", ".leading-dot", "a" * 129, "bad!char", "sp ace", "tab%09bed", "ümlaut"]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_invalid_tag(seed: Seed, http: httpx.Client, tag: str) -> None:
    with unchanged(seed):
        response = http.put(f"/v2/{seed.repo}/manifests/{tag}", content=seed.image.body,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, 400, {"TAG_INVALID", "MANIFEST_INVALID"})


# -- digests ------------------------------------------------------------------------------------------------------


BAD_DIGESTS = [
    "sha256:xyz",
    "sha256:" + "A" * 64,
    "sha256:" + "0" * 63,
    "sha256:" + "0" * 65,
    "sha256:",
    "md5:" + "0" * 32,
    "sha384:" + "0" * 96,
    "foo:bar",
    "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    "notadigest",
    "sha512:" + "0" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digest_strings(seed: Seed, http: httpx.Client, digest: str) -> None:
    repo = seed.repo
    with unchanged(seed):
        assert_error(http.get(f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")
        assert_error(http.head(f"/v2/{repo}/blobs/{digest}"), 400, None)
        assert_error(http.delete(f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")
        assert_error(http.get(f"/v2/{repo}/referrers/{digest}"), 400, "DIGEST_INVALID")
        assert_error(http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=b"data"),
                     400, "DIGEST_INVALID")
        assert_error(http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": repo}),
                     400, "DIGEST_INVALID")
        location = _start_upload(http, repo)
        assert_error(http.put(location, params={"digest": digest}, content=b"data"), 400, "DIGEST_INVALID")
        if ":" in digest:  # a reference with ':' is a digest, never a tag
            assert_error(http.get(f"/v2/{repo}/manifests/{digest}"), 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})
            assert_error(http.delete(f"/v2/{repo}/manifests/{digest}"), 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})
            response = http.put(f"/v2/{repo}/manifests/{digest}", content=seed.image.body,
                                headers={"Content-Type": mt.OCI_MANIFEST})
            assert_error(response, 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})
            # the ACR metadata API too
            assert_error(http.get(f"/acr/v1/{repo}/_manifests/{digest}"), 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})


def test_unknown_but_valid_digests_are_404(seed: Seed, http: httpx.Client) -> None:
    for digest in (compute_digest(b"absent"), compute_digest(b"absent", "sha512")):
        assert_error(http.get(f"/v2/{seed.repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        assert_error(http.get(f"/v2/{seed.repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")


def test_wrong_digest_at_upload_finish(seed: Seed, http: httpx.Client) -> None:
    data = random_bytes(10_000, seed="wrong-digest")
    claimed = compute_digest(b"something else entirely")
    with unchanged(seed):
        location = _start_upload(http, seed.repo)
        patched = http.patch(location, content=data, headers={"Content-Type": "application/octet-stream"})
        assert patched.status_code == 202
        assert_error(http.put(location, params={"digest": claimed}), 400, "DIGEST_INVALID")
        # monolithic forms
        location = _start_upload(http, seed.repo)
        assert_error(http.put(location, params={"digest": claimed}, content=data), 400, "DIGEST_INVALID")
        assert_error(http.post(f"/v2/{seed.repo}/blobs/uploads/", params={"digest": claimed}, content=data),
                     400, "DIGEST_INVALID")
        # the right algorithm, the wrong length of data
        location = _start_upload(http, seed.repo)
        assert_error(http.put(location, params={"digest": compute_digest(data, "sha512")}, content=data[:-1]),
                     400, "DIGEST_INVALID")
    for digest in (claimed, compute_digest(data), compute_digest(data[:-1], "sha512")):
        assert http.head(f"/v2/{seed.repo}/blobs/{digest}").status_code == 404


# -- chunked uploads ----------------------------------------------------------------------------------------------


def test_out_of_order_chunk(seed: Seed, http: httpx.Client) -> None:
    data = random_bytes(30, seed="chunks")
    location = _start_upload(http, seed.repo)

    def patch(start: int, end: int) -> httpx.Response:
        return http.patch(location, content=data[start : end + 1],
                          headers={"Content-Range": f"{start}-{end}", "Content-Type": "application/octet-stream"})

    first = patch(0, 9)
    assert first.status_code == 202 and first.headers["Range"] == "0-9"
    location = first.headers["Location"]
    with unchanged(seed):
        assert_error(patch(20, 29), 416, {"BLOB_UPLOAD_INVALID", "RANGE_INVALID"})  # a gap
        assert_error(patch(5, 14), 416, {"BLOB_UPLOAD_INVALID", "RANGE_INVALID"})  # an overlap
        assert_error(patch(0, 9), 416, {"BLOB_UPLOAD_INVALID", "RANGE_INVALID"})  # a replay
        status = http.get(location)
        assert status.status_code == 204 and status.headers["Range"] == "0-9"
    # the session is intact: the right next chunk continues it
    assert patch(10, 19).status_code == 202
    done = http.put(location, params={"digest": compute_digest(data)}, content=data[20:],
                    headers={"Content-Range": "20-29"})
    assert done.status_code == 201, done.text
    assert http.get(f"/v2/{seed.repo}/blobs/{compute_digest(data)}").content == data


def test_unknown_upload_session(seed: Seed, http: httpx.Client) -> None:
    unknown = f"/v2/{seed.repo}/blobs/uploads/{uuid.uuid4()}"
    with unchanged(seed):
        assert_error(http.get(unknown), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(http.patch(unknown, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(http.put(unknown, params={"digest": compute_digest(b"x")}, content=b"x"), 404,
                     "BLOB_UPLOAD_UNKNOWN")
        assert_error(http.delete(unknown), 404, "BLOB_UPLOAD_UNKNOWN")
        for crafted in ("not-a-uuid", "..", "%2e%2e"):
            status, body = raw_request(seed.server, "PATCH", f"/v2/{seed.repo}/blobs/uploads/{crafted}", b"x")
            assert_error((status, body), {400, 404}, {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
        # an id with an encoded slash names no endpoint at all: still a 404 with an error body
        status, body = raw_request(seed.server, "PATCH", f"/v2/{seed.repo}/blobs/uploads/..%2F..%2Fblobs", b"x")
        assert_error((status, body), {400, 404}, None)


def test_upload_session_of_another_repository(seed: Seed, http: httpx.Client) -> None:
    other = unique("bad/other-session")
    location = _start_upload(http, seed.repo)
    session = location.rstrip("/").rsplit("/", 1)[1].split("?")[0]
    with unchanged(seed, other):
        assert_error(http.patch(f"/v2/{other}/blobs/uploads/{session}", content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(http.put(f"/v2/{other}/blobs/uploads/{session}", params={"digest": compute_digest(b"x")},
                              content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert http.get(location).status_code == 204  # still alive in its own repository


def test_cancelled_upload_is_gone(seed: Seed, http: httpx.Client) -> None:
    location = _start_upload(http, seed.repo)
    assert http.delete(location).status_code == 204
    assert_error(http.patch(location, content=b"late"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


# -- names and paths ----------------------------------------------------------------------------------------------


BAD_NAMES = ["Upper/Case", "trailing-", "a..b", "-lead", "double//slash", "x" * 300, "sp ace", "a/.hidden"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_repository_names(seed: Seed, http: httpx.Client, name: str) -> None:
    with unchanged(seed):
        response = http.put(f"/v2/{name}/manifests/v1", content=seed.image.body,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, {400, 404}, {"NAME_INVALID", "NAME_UNKNOWN"})
        assert_error(http.post(f"/v2/{name}/blobs/uploads/"), {400, 404}, {"NAME_INVALID", "NAME_UNKNOWN"})
        assert_error(http.get(f"/v2/{name}/tags/list"), {400, 404}, {"NAME_INVALID", "NAME_UNKNOWN"})
        assert_error(http.get(f"/v2/{name}/blobs/{seed.image.blobs[0].digest}"), {400, 404},
                     {"NAME_INVALID", "NAME_UNKNOWN", "BLOB_UNKNOWN"})


TRAVERSALS = [
    "/v2/../../../etc/manifests/v1",
    "/v2/%2e%2e/%2e%2e/etc/manifests/v1",
    "/v2/%2E%2E%2F%2E%2E%2Fetc/manifests/v1",
    "/v2/ok/../../../tmp/escape/manifests/v1",
    "/v2//etc/passwd/manifests/v1",
    "/v2/%2Fetc%2Fpasswd/manifests/v1",
    "/v2/ok/%2e%2e/%2e%2e/x/manifests/v1",
    "/v2/ok%00null/manifests/v1",
    "/v2/ok\\..\\..\\x/manifests/v1",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal(seed: Seed, path: str) -> None:
    outside = sorted(p.name for p in seed.server.workdir.parent.iterdir())
    with unchanged(seed):
        put = raw_request(seed.server, "PUT", path, seed.image.body, {"Content-Type": mt.OCI_MANIFEST})
        assert_error(put, {400, 404}, {"NAME_INVALID", "NAME_UNKNOWN"})
        upload_path = path.replace("/manifests/v1", "/blobs/uploads/")
        post = raw_request(seed.server, "POST", upload_path)
        assert_error(post, {400, 404}, {"NAME_INVALID", "NAME_UNKNOWN"})
        for read in (path, path.replace("/manifests/v1", "/tags/list")):
            assert_error(raw_request(seed.server, "GET", read), {400, 404},
                         {"NAME_INVALID", "NAME_UNKNOWN", "MANIFEST_UNKNOWN"})
        acr = path.replace("/v2/", "/acr/v1/", 1).replace("/manifests/v1", "/_tags")
        assert_error(raw_request(seed.server, "GET", acr), {400, 404}, {"NAME_INVALID", "NAME_UNKNOWN"})
    assert sorted(p.name for p in seed.server.workdir.parent.iterdir()) == outside
    assert not Path("/tmp/escape").exists() and not Path("/etc/manifests").exists()


# -- auth ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_seed(dockyard_auth_server: DockyardServer) -> Seed:
    repo = unique("bad/auth")
    image = make_image(seed=repo, layers=1, layer_size=500)
    push(image, dockyard_auth_server.url, repo, tag="v1", auth=TEST_USER)
    return Seed(dockyard_auth_server, repo, image, auth=TEST_USER)


def _token(server: DockyardServer, scope: str) -> str:
    response = httpx.get(f"{server.url}/oauth2/token", params={"service": server.host, "scope": scope},
                         auth=TEST_USER)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_for_another_repository(auth_seed: Seed) -> None:
    server, repo = auth_seed.server, auth_seed.repo
    other = unique("bad/auth-other")
    token = _token(server, f"repository:{other}:pull,push,delete")
    with unchanged(auth_seed, other), httpx.Client(base_url=server.url, headers=_bearer(token)) as http:
        assert_error(http.get(f"/v2/{repo}/manifests/v1"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.get(f"/v2/{repo}/tags/list"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.get(f"/v2/{repo}/blobs/{auth_seed.image.blobs[0].digest}"), {401, 403},
                     {"UNAUTHORIZED", "DENIED"})
        assert_error(http.put(f"/v2/{repo}/manifests/v2", content=auth_seed.image.body,
                              headers={"Content-Type": mt.OCI_MANIFEST}), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.delete(f"/v2/{repo}/manifests/{auth_seed.image.digest}"), {401, 403},
                     {"UNAUTHORIZED", "DENIED"})
        assert_error(http.post(f"/v2/{repo}/blobs/uploads/"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.get(f"/acr/v1/{repo}/_tags"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.delete(f"/acr/v1/{repo}"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
    with httpx.Client(base_url=server.url, headers=_bearer(token)) as http:
        # a mount from the repository the token does not cover must not copy its blob: as distribution does,
        # 401 with a challenge that names the pull on the source the token lacks
        layer = auth_seed.image.blobs[1].digest
        mount = http.post(f"/v2/{other}/blobs/uploads/", params={"mount": layer, "from": repo})
        assert_error(mount, 401, "UNAUTHORIZED")
        assert f"repository:{repo}:pull" in mount.headers["WWW-Authenticate"]
        assert http.head(f"/v2/{other}/blobs/{layer}").status_code == 404
        # the token does work where it is meant to
        assert http.post(f"/v2/{other}/blobs/uploads/").status_code == 202


def test_pull_token_cannot_push_or_delete(auth_seed: Seed) -> None:
    server, repo = auth_seed.server, auth_seed.repo
    token = _token(server, f"repository:{repo}:pull")
    with unchanged(auth_seed), httpx.Client(base_url=server.url, headers=_bearer(token)) as http:
        assert http.get(f"/v2/{repo}/manifests/v1").content == auth_seed.image.body
        assert_error(http.post(f"/v2/{repo}/blobs/uploads/"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": compute_digest(b"x")}, content=b"x"),
                     {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.put(f"/v2/{repo}/manifests/v2", content=auth_seed.image.body,
                              headers={"Content-Type": mt.OCI_MANIFEST}), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.delete(f"/v2/{repo}/manifests/{auth_seed.image.digest}"), {401, 403},
                     {"UNAUTHORIZED", "DENIED"})
        assert_error(http.delete(f"/v2/{repo}/blobs/{auth_seed.image.blobs[0].digest}"), {401, 403},
                     {"UNAUTHORIZED", "DENIED"})
        assert_error(http.delete(f"/acr/v1/{repo}/_tags/v1"), {401, 403}, {"UNAUTHORIZED", "DENIED"})
        assert_error(http.patch(f"/acr/v1/{repo}", json={"deleteEnabled": False}), {401, 403},
                     {"UNAUTHORIZED", "DENIED"})


def test_push_token_upload_session_cannot_be_used_elsewhere(auth_seed: Seed) -> None:
    """An upload started under one repository's token cannot be finished with a token for another."""
    server, repo = auth_seed.server, auth_seed.repo
    other = unique("bad/auth-session")
    mine = _token(server, f"repository:{repo}:pull,push")
    theirs = _token(server, f"repository:{other}:pull,push")
    start = httpx.post(f"{server.url}/v2/{repo}/blobs/uploads/", headers=_bearer(mine))
    assert start.status_code == 202
    location = httpx.URL(server.url).join(start.headers["Location"])
    with unchanged(auth_seed, other):
        response = httpx.put(location.copy_merge_params({"digest": compute_digest(b"x")}), content=b"x",
                             headers=_bearer(theirs))
        assert_error(response, {401, 403}, {"UNAUTHORIZED", "DENIED"})


def test_bad_credentials_and_forged_tokens(auth_seed: Seed) -> None:
    server, repo = auth_seed.server, auth_seed.repo
    with unchanged(auth_seed):
        wrong = httpx.get(f"{server.url}/oauth2/token", params={"service": server.host,
                                                                 "scope": f"repository:{repo}:pull"},
                          auth=(TEST_USER[0], "wrong-password"))
        assert_error(wrong, 401, {"UNAUTHORIZED", "DENIED"})
        forged = _token(server, f"repository:{repo}:pull").split(".")
        forged[2] = forged[2][::-1]
        response = httpx.get(f"{server.url}/v2/{repo}/manifests/v1", headers=_bearer(".".join(forged)))
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="')
        nothing = httpx.put(f"{server.url}/v2/{repo}/manifests/v1", content=auth_seed.image.body,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(nothing, 401, "UNAUTHORIZED")
        challenge = nothing.headers["WWW-Authenticate"]
        assert f'scope="repository:{repo}:push' in challenge and ", " not in challenge


# -- ranges -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["bytes=500-0", "bytes={size}-", "bytes={size}-{end}", "bytes=-0", "bytes=abc-def",
                                  "bytes=1-2-3"])
def test_unsatisfiable_ranges(seed: Seed, http: httpx.Client, spec: str) -> None:
    blob = seed.image.blobs[1]
    header = spec.format(size=blob.size, end=blob.size + 100)
    response = http.get(f"/v2/{seed.repo}/blobs/{blob.digest}", headers={"Range": header})
    assert_error(response, 416, {"RANGE_INVALID", "BLOB_UNKNOWN", "UNSUPPORTED"} | {"BLOB_UPLOAD_INVALID"})
    assert response.headers.get("Content-Range") == f"bytes */{blob.size}"
    assert_still_serving(seed)
    # the same blob still answers a good range
    ok = http.get(f"/v2/{seed.repo}/blobs/{blob.digest}", headers={"Range": "bytes=10-19"})
    assert ok.status_code == 206 and ok.content == blob.data[10:20]
    assert ok.headers["Content-Range"] == f"bytes 10-19/{blob.size}"


# -- the ACR metadata API ---------------------------------------------------------------------------------------


def test_acr_bad_requests(seed: Seed, http: httpx.Client) -> None:
    repo = seed.repo
    with unchanged(seed):
        assert_error(http.patch(f"/acr/v1/{repo}", content=b"{not json", headers={"Content-Type": "application/json"}),
                     400, None)
        assert_error(http.patch(f"/acr/v1/{repo}/_tags/v1", json={"deleteEnabled": "yes"}), 400, None)
        assert_error(http.get(f"/acr/v1/{repo}/_tags", params={"n": "-1"}), 400, "PAGINATION_NUMBER_INVALID")
        assert_error(http.get(f"/v2/{repo}/tags/list", params={"n": "abc"}), 400, "PAGINATION_NUMBER_INVALID")
        assert_error(http.get(f"/acr/v1/{repo}/_tags/no-such-tag"), 404, {"TAG_UNKNOWN", "MANIFEST_UNKNOWN"})
        assert_error(http.get(f"/acr/v1/{unique('bad/nope')}"), 404, "NAME_UNKNOWN")


def push_blob(http: httpx.Client, repo: str, data: bytes) -> str:
    """Monolithic POST ?digest= upload through an existing client."""
    digest = compute_digest(data)
    response = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    return digest


# -- fuzzing: whatever arrives, the answer is never a 5xx ---------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=512),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
))
def test_fuzzed_manifest_bodies_never_500(seed: Seed, http: httpx.Client, body: bytes) -> None:
    response = http.put(f"/v2/{seed.repo}/manifests/fuzz", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert_error(response, {400, 404, 413}, None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reference=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
                         min_size=1, max_size=80))
def test_fuzzed_references_never_500(seed: Seed, http: httpx.Client, reference: str) -> None:
    for response in (
        http.get(f"/v2/{seed.repo}/manifests/{reference}"),
        http.get(f"/v2/{seed.repo}/blobs/{reference}"),
        http.delete(f"/v2/{seed.repo}/manifests/{reference}"),
        http.get(f"/acr/v1/{seed.repo}/_tags/{reference}"),
    ):
        assert response.status_code < 500, (reference, response.status_code, response.text)
        if response.status_code >= 400:
            assert_error(response, response.status_code, None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 5000) | st.just(""), st.integers(0, 5000) | st.just("")),
    st.text(alphabet="bytes=0123456789-, ", max_size=30).map(str.strip).filter(bool),
))
def test_fuzzed_ranges(seed: Seed, http: httpx.Client, header: str) -> None:
    blob = seed.image.blobs[1]
    response = http.get(f"/v2/{seed.repo}/blobs/{blob.digest}", headers={"Range": header})
    assert response.status_code in (200, 206, 416), (header, response.status_code)
    if response.status_code == 206:
        first, last = (int(x) for x in response.headers["Content-Range"].split(" ")[1].split("/")[0].split("-"))
        assert response.content == blob.data[first : last + 1]
    elif response.status_code == 200:
        assert response.content == blob.data
    else:
        assert response.headers["Content-Range"] == f"bytes */{blob.size}"
