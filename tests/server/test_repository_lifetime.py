"""A repository exists while it holds a manifest, the same on ``/v2`` and ``/acr/v1`` (as on ACR), except for the
``/v2`` tag list, which answers an empty list for a repository that was pushed to and not deleted as a whole."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support.images import make_image, push, random_bytes, upload_blob
from tests.support.servers import DockyardServer


@pytest.fixture
def http(dockyard_server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dockyard_server.url, timeout=30.0) as client:
        yield client


def assert_name_unknown(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def assert_gone(http: httpx.Client, repo: str) -> None:
    """Every view of the repository agrees that it does not exist."""
    assert_name_unknown(http.get(f"/acr/v1/{repo}"))
    assert_name_unknown(http.get(f"/acr/v1/{repo}/_tags"))
    assert_name_unknown(http.get(f"/acr/v1/{repo}/_manifests"))
    assert_name_unknown(http.patch(f"/acr/v1/{repo}", json={"writeEnabled": False}))
    # The /v2 tag list is the exception (distribution-spec: "the list of tags MAY be empty"): a repository that
    # received pushes lists no tags until it is deleted as a whole.
    listed = http.get(f"/v2/{repo}/tags/list")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"name": repo, "tags": []}
    assert repo not in http.get("/v2/_catalog").json()["repositories"]
    assert repo not in http.get("/acr/v1/_catalog").json()["repositories"]


def test_deleting_the_last_manifest_through_v2_removes_the_repository(
    http: httpx.Client, dockyard_server: DockyardServer
) -> None:
    repo = unique("lifetime")
    first = make_image(seed="lifetime-1")
    second = make_image(seed="lifetime-2")
    push(first, dockyard_server.url, repo, tag="v1", client=http)
    push(second, dockyard_server.url, repo, tag="v2", client=http)
    assert http.get(f"/acr/v1/{repo}").json()["manifestCount"] == 2

    assert http.delete(f"/v2/{repo}/manifests/{first.digest}").status_code == 202
    body = http.get(f"/acr/v1/{repo}").json()
    assert (body["manifestCount"], body["tagCount"]) == (1, 1)

    # Untagging keeps the manifest, so the repository stays (with no tags).
    assert http.delete(f"/v2/{repo}/manifests/v2").status_code == 202
    body = http.get(f"/acr/v1/{repo}").json()
    assert (body["manifestCount"], body["tagCount"]) == (1, 0)
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == []

    assert http.delete(f"/v2/{repo}/manifests/{second.digest}").status_code == 202
    assert_gone(http, repo)

    # Pushing again brings it back.
    push(first, dockyard_server.url, repo, tag="again", client=http)
    body = http.get(f"/acr/v1/{repo}").json()
    assert (body["imageName"], body["manifestCount"], body["tagCount"]) == (repo, 1, 1)
    assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["again"]


def test_a_repository_holding_only_blobs_does_not_exist_yet(
    http: httpx.Client, dockyard_server: DockyardServer
) -> None:
    repo = unique("blobs-only")
    digest = upload_blob(http, dockyard_server.url, repo, random_bytes(2048, "blobs-only"))
    assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 200
    assert_gone(http, repo)
