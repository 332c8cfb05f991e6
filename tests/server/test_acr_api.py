"""``dockyard serve``: the ACR metadata API (/acr/v1) over raw HTTP, and locks holding across both APIs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.server.test_distribution_api import assert_error
from tests.support.images import Content, make_image, make_multiarch_index, push, upload_blob
from tests.support.inprocess import InProcessServer

pytestmark = pytest.mark.backends

API = {"api-version": "2021-07-01"}
ALL_ENABLED = {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def http(dockyard_app: InProcessServer) -> Iterator[httpx.Client]:
    with dockyard_app.client(timeout=30.0) as client:
        yield client


def when(text: str) -> datetime:
    assert RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def tag_image(http: httpx.Client, repo: str, image: Content, tag: str) -> httpx.Response:
    return http.put(f"/v2/{repo}/manifests/{tag}", content=image.body, headers={"Content-Type": image.media_type})


def follow(http: httpx.Client, url: str, key: str) -> tuple[list[dict], int]:
    """Every item of a paged ACR listing, following ``Link`` headers; returns (items, pages)."""
    items: list[dict] = []
    pages = 0
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.text
        items += response.json()[key]
        pages += 1
        link = response.headers.get("Link")
        assert link is None or link.endswith('>; rel="next"')
        url = link[1 : link.index(">")] if link else ""
    return items, pages


@pytest.fixture
def tagged(http: httpx.Client, dockyard_app: InProcessServer) -> tuple[str, Content, list[str]]:
    """A repository with one image under five tags pushed one after another (t0 oldest)."""
    repo = unique("acr")
    image = make_image(seed=repo, architecture="arm64")
    push(image, dockyard_app.url, repo, client=http)
    tags = ["t0", "t3", "t1", "t4", "t2"]  # push order differs from name order
    for tag in tags:
        assert tag_image(http, repo, image, tag).status_code == 201
    return repo, image, tags


def test_repository_properties(http: httpx.Client, tagged: tuple[str, Content, list[str]],
                               dockyard_app: InProcessServer) -> None:
    repo, _, tags = tagged
    response = http.get(f"/acr/v1/{repo}", params=API)
    assert response.status_code == 200
    body = response.json()
    assert body["registry"] == dockyard_app.host
    assert body["imageName"] == repo
    assert body["manifestCount"] == 1 and body["tagCount"] == len(tags)
    assert when(body["createdTime"]) <= when(body["lastUpdateTime"])
    assert body["changeableAttributes"] == ALL_ENABLED
    assert_error(http.get(f"/acr/v1/{unique('absent')}", params=API), 404, "NAME_UNKNOWN")


def test_repository_patch(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo = tagged[0]
    patched = http.patch(f"/acr/v1/{repo}", params=API, json={"listEnabled": False, "readEnabled": True})
    assert patched.status_code == 200
    assert patched.json()["changeableAttributes"] == {**ALL_ENABLED, "listEnabled": False}
    assert http.get(f"/acr/v1/{repo}").json()["changeableAttributes"]["listEnabled"] is False
    assert_error(http.patch(f"/acr/v1/{repo}", json={"deleteEnabled": "no"}), 400, "INVALID_REQUEST")
    assert_error(http.patch(f"/acr/v1/{repo}", content=b"[1,"), 400, "INVALID_REQUEST")


def test_acr_catalog_paging(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    prefix = unique("acrcat")
    image = make_image(seed=prefix)
    repos = [f"{prefix}/r{i}" for i in range(4)]
    for repo in repos:
        push(image, dockyard_app.url, repo, tag="v1", client=http)
    everything = http.get("/acr/v1/_catalog").json()["repositories"]
    assert set(repos) <= set(everything) and everything == sorted(everything)
    names, _ = follow(http, "/acr/v1/_catalog?n=3", "repositories")
    assert names == everything
    assert http.get("/acr/v1/_catalog", params={"last": repos[0], "n": 2}).json()["repositories"] == repos[1:3]


def test_tags_list_fields(http: httpx.Client, tagged: tuple[str, Content, list[str]],
                          dockyard_app: InProcessServer) -> None:
    repo, image, tags = tagged
    body = http.get(f"/acr/v1/{repo}/_tags").json()
    assert body["registry"] == dockyard_app.host and body["imageName"] == repo
    assert [t["name"] for t in body["tags"]] == sorted(tags)
    for item in body["tags"]:
        assert item["digest"] == image.digest
        assert item["changeableAttributes"] == ALL_ENABLED
        when(item["createdTime"])
        when(item["lastUpdateTime"])


@pytest.mark.parametrize("order", ["timeasc", "timedesc", "none"])
def test_tags_order_and_paging(http: httpx.Client, tagged: tuple[str, Content, list[str]], order: str) -> None:
    repo, _, tags = tagged
    expected = {"timeasc": tags, "timedesc": list(reversed(tags)), "none": sorted(tags)}[order]
    items, pages = follow(http, f"/acr/v1/{repo}/_tags?orderby={order}&n=2", "tags")
    assert [t["name"] for t in items] == expected
    assert pages == 3
    unpaged = http.get(f"/acr/v1/{repo}/_tags", params={"orderby": order}).json()["tags"]
    assert [t["name"] for t in unpaged] == expected
    assert_error(http.get(f"/acr/v1/{repo}/_tags", params={"orderby": "sideways"}), 400, "UNSUPPORTED")


def test_tags_digest_filter(http: httpx.Client, tagged: tuple[str, Content, list[str]],
                            dockyard_app: InProcessServer) -> None:
    repo, image, tags = tagged
    other = make_image(seed=f"{repo}-other")
    push(other, dockyard_app.url, repo, tag="other", client=http)
    only = http.get(f"/acr/v1/{repo}/_tags", params={"digest": other.digest}).json()["tags"]
    assert [t["name"] for t in only] == ["other"]
    first = http.get(f"/acr/v1/{repo}/_tags", params={"digest": image.digest, "n": 2})
    assert [t["name"] for t in first.json()["tags"]] == sorted(tags)[:2]
    assert "digest=" in first.headers["Link"]


def test_tag_get_patch_delete(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, _ = tagged
    got = http.get(f"/acr/v1/{repo}/_tags/t1", params=API)
    assert got.status_code == 200
    body = got.json()
    assert body["imageName"] == repo and body["tag"]["name"] == "t1" and body["tag"]["digest"] == image.digest
    patched = http.patch(f"/acr/v1/{repo}/_tags/t1", params=API, json={"writeEnabled": False})
    assert patched.json()["tag"]["changeableAttributes"] == {**ALL_ENABLED, "writeEnabled": False}
    http.patch(f"/acr/v1/{repo}/_tags/t1", json={"writeEnabled": True})
    assert http.delete(f"/acr/v1/{repo}/_tags/t1", params=API).status_code == 202
    assert_error(http.get(f"/acr/v1/{repo}/_tags/t1"), 404, "TAG_UNKNOWN")
    assert_error(http.delete(f"/acr/v1/{repo}/_tags/t1"), 404, "TAG_UNKNOWN")
    assert http.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 200


def test_manifests_list_and_get(http: httpx.Client, dockyard_app: InProcessServer) -> None:
    repo = unique("acrman")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=repo)
    push(index, dockyard_app.url, repo, tag="multi", client=http)
    amd64 = index.children[0]
    tag_image(http, repo, amd64, "amd")
    body = http.get(f"/acr/v1/{repo}/_manifests").json()
    assert body["registry"] == dockyard_app.host and body["imageName"] == repo
    items = {m["digest"]: m for m in body["manifests"]}
    assert set(items) == {index.digest, *(c.digest for c in index.children)}
    image_item = items[amd64.digest]
    assert image_item["architecture"] == "amd64" and image_item["os"] == "linux"
    assert image_item["mediaType"] == mt.OCI_MANIFEST and image_item["configMediaType"] == mt.OCI_CONFIG
    assert image_item["tags"] == ["amd"]
    assert image_item["imageSize"] >= sum(b.size for b in amd64.blobs)
    assert image_item["changeableAttributes"] == ALL_ENABLED
    assert "references" not in image_item
    index_item = items[index.digest]
    assert index_item["mediaType"] == mt.OCI_INDEX and index_item["tags"] == ["multi"]
    assert index_item["architecture"] is None and index_item["configMediaType"] is None
    assert index_item["references"] == [
        {"digest": c.digest, "architecture": c.platform.architecture, "os": c.platform.os} for c in index.children
    ]
    single = http.get(f"/acr/v1/{repo}/_manifests/{amd64.digest.replace(':', '%3A')}", params=API)
    assert single.status_code == 200
    assert single.json()["manifest"] == image_item
    by_tag = http.get(f"/acr/v1/{repo}/_manifests/multi").json()["manifest"]
    assert by_tag["digest"] == index.digest
    assert_error(http.get(f"/acr/v1/{repo}/_manifests/{compute_digest(b'x')}"), 404, "MANIFEST_UNKNOWN")
    assert_error(http.get(f"/acr/v1/{repo}/_manifests/sha256:nothex"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("order", ["timeasc", "timedesc", "none"])
def test_manifests_order_and_paging(http: httpx.Client, dockyard_app: InProcessServer, order: str) -> None:
    repo = unique("acrmanpage")
    digests = [push(make_image(seed=f"{repo}-{i}"), dockyard_app.url, repo, tag=f"v{i}", client=http) for i in range(5)]
    expected = {"timeasc": digests, "timedesc": list(reversed(digests)), "none": sorted(digests)}[order]
    items, pages = follow(http, f"/acr/v1/{repo}/_manifests?orderby={order}&n=2", "manifests")
    assert [m["digest"] for m in items] == expected
    assert pages == 3


def test_manifest_patch(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, _ = tagged
    patched = http.patch(f"/acr/v1/{repo}/_manifests/{image.digest}", params=API, json={"deleteEnabled": False})
    assert patched.status_code == 200
    assert patched.json()["manifest"]["changeableAttributes"] == {**ALL_ENABLED, "deleteEnabled": False}


def test_delete_repository(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, tags = tagged
    response = http.delete(f"/acr/v1/{repo}", params=API)
    assert response.status_code == 202
    assert response.json() == {"manifestsDeleted": [image.digest], "tagsDeleted": sorted(tags)}
    assert_error(http.get(f"/acr/v1/{repo}"), 404, "NAME_UNKNOWN")
    assert_error(http.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")
    assert repo not in http.get("/v2/_catalog").json()["repositories"]
    assert_error(http.delete(f"/acr/v1/{repo}"), 404, "NAME_UNKNOWN")


# -- locks across both APIs ---------------------------------------------------------------------------------------


def test_tag_delete_lock(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, _ = tagged
    http.patch(f"/acr/v1/{repo}/_tags/t0", json={"deleteEnabled": False})
    assert_error(http.delete(f"/acr/v1/{repo}/_tags/t0"), 405, "DENIED")
    assert_error(http.delete(f"/v2/{repo}/manifests/t0"), 405, "DENIED")
    # Deleting the manifest would remove the locked tag too.
    assert_error(http.delete(f"/v2/{repo}/manifests/{image.digest}"), 405, "DENIED")
    assert_error(http.delete(f"/acr/v1/{repo}"), 405, "DENIED")
    assert http.get(f"/v2/{repo}/manifests/t0").status_code == 200
    assert http.delete(f"/v2/{repo}/manifests/t1").status_code == 202
    http.patch(f"/acr/v1/{repo}/_tags/t0", json={"deleteEnabled": True})
    assert http.delete(f"/v2/{repo}/manifests/t0").status_code == 202


def test_manifest_delete_lock(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, _ = tagged
    http.patch(f"/acr/v1/{repo}/_manifests/{image.digest}", json={"deleteEnabled": False})
    assert_error(http.delete(f"/v2/{repo}/manifests/{image.digest}"), 405, "DENIED")
    assert_error(http.delete(f"/acr/v1/{repo}"), 405, "DENIED")
    assert http.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 200


def test_repository_delete_lock(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, _ = tagged
    http.patch(f"/acr/v1/{repo}", json={"deleteEnabled": False})
    assert_error(http.delete(f"/acr/v1/{repo}"), 405, "DENIED")
    assert_error(http.delete(f"/v2/{repo}/manifests/{image.digest}"), 405, "DENIED")
    assert_error(http.delete(f"/acr/v1/{repo}/_tags/t2"), 405, "DENIED")
    assert_error(http.delete(f"/v2/{repo}/blobs/{image.blobs[0].digest}"), 405, "DENIED")
    http.patch(f"/acr/v1/{repo}", json={"deleteEnabled": True})
    assert http.delete(f"/acr/v1/{repo}").status_code == 202


def test_write_locks(http: httpx.Client, tagged: tuple[str, Content, list[str]],
                     dockyard_app: InProcessServer) -> None:
    repo, image, _ = tagged
    newer = make_image(seed=f"{repo}-newer")
    push(newer, dockyard_app.url, repo, client=http)
    # A write-locked tag cannot be moved (nor deleted: a write-locked artifact is immutable, as on ACR).
    http.patch(f"/acr/v1/{repo}/_tags/t0", json={"writeEnabled": False})
    assert_error(tag_image(http, repo, newer, "t0"), 405, "DENIED")
    assert_error(http.delete(f"/acr/v1/{repo}/_tags/t0"), 405, "DENIED")
    assert http.get(f"/v2/{repo}/manifests/t0").headers["Docker-Content-Digest"] == image.digest
    assert tag_image(http, repo, newer, "t1").status_code == 201
    # A write-locked manifest cannot be pushed again.
    http.patch(f"/acr/v1/{repo}/_manifests/{newer.digest}", json={"writeEnabled": False})
    assert_error(tag_image(http, repo, newer, newer.digest), 405, "DENIED")
    # A write-locked repository refuses uploads and manifest pushes.
    http.patch(f"/acr/v1/{repo}", json={"writeEnabled": False})
    assert_error(http.post(f"/v2/{repo}/blobs/uploads/"), 405, "DENIED")
    assert_error(http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": compute_digest(b"z")}, content=b"z"),
                 405, "DENIED")
    assert_error(tag_image(http, repo, image, "brand-new"), 405, "DENIED")
    http.patch(f"/acr/v1/{repo}", json={"writeEnabled": True})
    assert upload_blob(http, dockyard_app.url, repo, b"z")


def test_read_locks(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    repo, image, _ = tagged
    layer = image.blobs[1].digest
    http.patch(f"/acr/v1/{repo}/_tags/t0", json={"readEnabled": False})
    assert_error(http.get(f"/v2/{repo}/manifests/t0"), 405, "DENIED")
    assert http.get(f"/v2/{repo}/manifests/t1").status_code == 200
    http.patch(f"/acr/v1/{repo}/_manifests/{image.digest}", json={"readEnabled": False})
    assert_error(http.get(f"/v2/{repo}/manifests/{image.digest}"), 405, "DENIED")
    assert http.head(f"/v2/{repo}/manifests/t1").status_code == 405
    http.patch(f"/acr/v1/{repo}/_manifests/{image.digest}", json={"readEnabled": True})
    http.patch(f"/acr/v1/{repo}", json={"readEnabled": False})
    assert_error(http.get(f"/v2/{repo}/manifests/t1"), 405, "DENIED")
    assert_error(http.get(f"/v2/{repo}/blobs/{layer}"), 405, "DENIED")
    # Metadata stays readable, so the lock can be seen and lifted.
    assert http.get(f"/acr/v1/{repo}").json()["changeableAttributes"]["readEnabled"] is False
    http.patch(f"/acr/v1/{repo}", json={"readEnabled": True})
    assert http.get(f"/v2/{repo}/blobs/{layer}").status_code == 200


def test_list_locks(http: httpx.Client, tagged: tuple[str, Content, list[str]],
                    dockyard_app: InProcessServer) -> None:
    repo, image, _ = tagged
    other = make_image(seed=f"{repo}-listed")
    push(other, dockyard_app.url, repo, tag="visible", client=http)
    http.patch(f"/acr/v1/{repo}/_tags/t0", json={"listEnabled": False})
    assert "t0" not in http.get(f"/v2/{repo}/tags/list").json()["tags"]
    assert "t0" not in [t["name"] for t in http.get(f"/acr/v1/{repo}/_tags").json()["tags"]]
    assert http.get(f"/acr/v1/{repo}/_tags/t0").status_code == 200
    http.patch(f"/acr/v1/{repo}/_manifests/{other.digest}", json={"listEnabled": False})
    listed = [m["digest"] for m in http.get(f"/acr/v1/{repo}/_manifests").json()["manifests"]]
    assert listed == [image.digest]
    http.patch(f"/acr/v1/{repo}", json={"listEnabled": False})
    assert repo not in http.get("/v2/_catalog").json()["repositories"]
    assert repo not in http.get("/acr/v1/_catalog").json()["repositories"]
    assert http.get(f"/v2/{repo}/manifests/t0").status_code == 200
    http.patch(f"/acr/v1/{repo}", json={"listEnabled": True})
    assert repo in http.get("/acr/v1/_catalog").json()["repositories"]


def test_tags_list_each_tag_keeps_its_own_flags(http: httpx.Client, tagged: tuple[str, Content, list[str]]) -> None:
    """A listing shares one flags object per combination of lock flags: every tag still shows its own, and a
    change to one tag's flags shows in the next listing."""
    repo, _, tags = tagged
    http.patch(f"/acr/v1/{repo}/_tags/t1", json={"writeEnabled": False})
    http.patch(f"/acr/v1/{repo}/_tags/t3", json={"deleteEnabled": False, "readEnabled": False})
    listed = {t["name"]: t["changeableAttributes"] for t in http.get(f"/acr/v1/{repo}/_tags").json()["tags"]}
    assert listed == {
        **{name: ALL_ENABLED for name in tags},
        "t1": {**ALL_ENABLED, "writeEnabled": False},
        "t3": {**ALL_ENABLED, "deleteEnabled": False, "readEnabled": False},
    }
    http.patch(f"/acr/v1/{repo}/_tags/t1", json={"writeEnabled": True, "deleteEnabled": False})
    paged, _ = follow(http, f"/acr/v1/{repo}/_tags?n=2&orderby=timedesc", "tags")
    assert {t["name"]: t["changeableAttributes"] for t in paged} == {
        **listed,
        "t1": {**ALL_ENABLED, "deleteEnabled": False},
    }
