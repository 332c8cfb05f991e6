"""Distribution-spec 1.1 behaviours the OCI conformance suite checks, and the grammar and media-type rules behind
them: malformed tags on reads, tag lists of emptied repositories, ``?tag=`` on a push by digest, ``$`` anchors,
and manifest media types."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.server.test_bad_input import assert_error
from tests.support.images import Content, make_image, make_index, push
from tests.support.inprocess import InProcessServer


@pytest.fixture
def http(dockyard_app: InProcessServer) -> Iterator[httpx.Client]:
    with dockyard_app.client(timeout=30.0, headers={"Accept": mt.MANIFEST_ACCEPT}) as client:
        yield client


@pytest.fixture
def pushed(dockyard_app: InProcessServer, http: httpx.Client) -> tuple[str, Content]:
    repo = unique("conformance")
    image = make_image(seed=repo, layers=1, layer_size=300)
    push(image, dockyard_app.url, repo, tag="v1", client=http)
    return repo, image


# -- item: GET/HEAD of a malformed tag is 404 MANIFEST_UNKNOWN; writes stay 400 ----------------------------------


@pytest.mark.parametrize("tag", [".INVALID_MANIFEST_NAME", "-dash", "a" * 129, "bad!char"])
def test_reading_a_malformed_tag_is_manifest_unknown(http: httpx.Client, pushed: tuple[str, Content],
                                                     tag: str) -> None:
    repo, image = pushed
    assert_error(http.get(f"/v2/{repo}/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")
    head = http.head(f"/v2/{repo}/manifests/{tag}")
    assert head.status_code == 404 and head.content == b""
    assert_error(http.get(f"/v2/{unique('nobody')}/manifests/{tag}"), 404, {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"})
    # Writes and deletes with a malformed tag are still refused as malformed.
    response = http.put(f"/v2/{repo}/manifests/{tag}", content=image.body, headers={"Content-Type": image.media_type})
    assert_error(response, 400, "TAG_INVALID")
    assert_error(http.delete(f"/v2/{repo}/manifests/{tag}"), 400, "TAG_INVALID")


# -- item: the tag list of a repository whose last manifest was deleted -------------------------------------------


def test_tag_list_after_the_last_manifest_is_deleted_is_empty(http: httpx.Client, pushed: tuple[str, Content]) -> None:
    repo, image = pushed
    assert http.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    listed = http.get(f"/v2/{repo}/tags/list")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"name": repo, "tags": []}
    # ACR's views follow ACR: the repository is gone from the metadata API and both catalogs.
    assert_error(http.get(f"/acr/v1/{repo}"), 404, "NAME_UNKNOWN")
    assert repo not in http.get("/v2/_catalog").json()["repositories"]
    # A repository that never existed is still unknown, and so is one deleted as a whole.
    assert_error(http.get(f"/v2/{unique('never')}/tags/list"), 404, "NAME_UNKNOWN")


# -- item: PUT by digest with ?tag=a&tag=b -------------------------------------------------------------------------


def test_push_by_digest_applies_tag_parameters(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("conformance/tags")
    image = make_image(seed=repo, layers=1, layer_size=200)
    push(image, dockyard_app.url, repo, client=http)
    response = http.put(f"/v2/{repo}/manifests/{image.digest}", params=[("tag", "a"), ("tag", "b"), ("tag", "a")],
                        content=image.body, headers={"Content-Type": image.media_type})
    assert response.status_code == 201, response.text
    assert response.headers.get_list("OCI-Tag") == ["a", "b"]
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["a", "b"]
    for tag in ("a", "b"):
        assert http.get(f"/v2/{repo}/manifests/{tag}").headers["Docker-Content-Digest"] == image.digest
    # With a tag as the reference, the parameters add tags too (OCI-Tag names those from parameters).
    response = http.put(f"/v2/{repo}/manifests/main", params={"tag": "c"}, content=image.body,
                        headers={"Content-Type": image.media_type})
    assert response.status_code == 201 and response.headers.get_list("OCI-Tag") == ["c"]
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["a", "b", "c", "main"]


def test_a_bad_tag_parameter_applies_nothing(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("conformance/badtag")
    image = make_image(seed=repo, layers=1, layer_size=200)
    push(image, dockyard_app.url, repo, tag="keep", client=http)
    other = make_image(seed=f"{repo}-other", layers=1, layer_size=200)
    push(other, dockyard_app.url, repo, client=http)
    for bad in ("-x", "v1\n", "a" * 129):
        response = http.put(f"/v2/{repo}/manifests/{other.digest}", params=[("tag", "good"), ("tag", bad)],
                            content=other.body, headers={"Content-Type": other.media_type})
        assert_error(response, 400, "TAG_INVALID")
        assert "OCI-Tag" not in response.headers
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["keep"]


# -- item: grammar anchors ($ matches before a trailing newline) --------------------------------------------------


def test_a_trailing_newline_is_not_part_of_a_valid_tag_or_name(http: httpx.Client, pushed: tuple[str, Content]) -> None:
    repo, image = pushed
    headers = {"Content-Type": image.media_type}
    assert_error(http.put(f"/v2/{repo}/manifests/v2%0A", content=image.body, headers=headers), 400, "TAG_INVALID")
    assert_error(http.put(f"/v2/{repo}/manifests/{image.digest}", params={"tag": "v3\n"}, content=image.body,
                          headers=headers), 400, "TAG_INVALID")
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
    assert_error(http.get(f"/v2/{repo}/manifests/v1%0A"), 404, "MANIFEST_UNKNOWN")
    assert_error(http.get(f"/v2/{repo}/blobs/{image.blobs[0].digest}%0A"), 400, "DIGEST_INVALID")


# -- item: only manifest media types are stored and served --------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/html", "application/json", "application/octet-stream",
                                          "application/vnd.oci.image.config.v1+json"])
def test_a_manifest_push_needs_a_manifest_media_type(http: httpx.Client, pushed: tuple[str, Content],
                                                     content_type: str) -> None:
    repo, image = pushed
    response = http.put(f"/v2/{repo}/manifests/html", content=image.body, headers={"Content-Type": content_type})
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(http.get(f"/v2/{repo}/manifests/html"), 404, "MANIFEST_UNKNOWN")


def test_a_body_media_type_that_is_not_a_manifest_type_is_refused(http: httpx.Client,
                                                                   pushed: tuple[str, Content]) -> None:
    repo, image = pushed
    document = image.json
    document["mediaType"] = "text/html"
    body = json.dumps(document).encode()
    for headers in ({}, {"Content-Type": mt.OCI_MANIFEST}):
        response = http.put(f"/v2/{repo}/manifests/html", content=body, headers=headers)
        assert_error(response, 400, "MANIFEST_INVALID")


@pytest.mark.parametrize("docker", [False, True])
def test_the_stored_media_type_is_served(http: httpx.Client, dockyard_app: InProcessServer, docker: bool) -> None:
    repo = unique("conformance/types")
    image = make_image(seed=repo, layers=1, layer_size=100, docker=docker)
    push(image, dockyard_app.url, repo, tag="v1", client=http)
    index = make_index([image], docker=docker)
    push(index, dockyard_app.url, repo, tag="list", client=http)
    for tag, content in (("v1", image), ("list", index)):
        for method in ("GET", "HEAD"):
            response = http.request(method, f"/v2/{repo}/manifests/{tag}")
            assert response.headers["Content-Type"] == content.media_type
    # Without a Content-Type the body's mediaType decides; with parameters the media type still counts.
    response = http.put(f"/v2/{repo}/manifests/bare", content=image.body)
    assert response.status_code == 201, response.text
    response = http.put(f"/v2/{repo}/manifests/charset", content=image.body,
                        headers={"Content-Type": f"{image.media_type}; charset=utf-8"})
    assert response.status_code == 201, response.text
    assert http.get(f"/v2/{repo}/manifests/charset").headers["Content-Type"] == image.media_type


def test_a_manifest_without_media_type_is_not_stored_as_text_html(http: httpx.Client,
                                                                   pushed: tuple[str, Content]) -> None:
    """An OCI manifest may omit ``mediaType``: the header alone then named the type, and ``text/html`` was kept and
    served back."""
    repo, image = pushed
    document = image.json
    del document["mediaType"]
    body = json.dumps(document).encode()
    response = http.put(f"/v2/{repo}/manifests/page", content=body, headers={"Content-Type": "text/html"})
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(http.get(f"/v2/{repo}/manifests/page"), 404, "MANIFEST_UNKNOWN")
    response = http.put(f"/v2/{repo}/manifests/page", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert http.get(f"/v2/{repo}/manifests/page").headers["Content-Type"] == mt.OCI_MANIFEST
