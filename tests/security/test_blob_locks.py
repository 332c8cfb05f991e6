"""Locks hold for blobs too: ``DELETE /v2/<name>/blobs/<digest>`` of a layer or config of a locked manifest (or of a
manifest a locked tag points to, or a child of a locked index) answers 405 DENIED and the image stays whole."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.server.test_bad_input import assert_error
from tests.support.images import Content, make_image, make_index, push
from tests.support.servers import DockyardServer


@pytest.fixture
def http(dockyard_server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dockyard_server.url, timeout=30.0) as client:
        yield client


def _pushed(server: DockyardServer, http: httpx.Client, tag: str = "v1") -> tuple[str, Content]:
    repo = unique("locks/blob")
    image = make_image(seed=repo, layers=2, layer_size=300)
    push(image, server.url, repo, tag=tag, client=http)
    return repo, image


def _assert_whole(http: httpx.Client, repo: str, image: Content) -> None:
    for blob in image.blobs:
        got = http.get(f"/v2/{repo}/blobs/{blob.digest}")
        assert got.status_code == 200 and got.content == blob.data


@pytest.mark.parametrize("lock", [{"deleteEnabled": False}, {"writeEnabled": False}])
@pytest.mark.parametrize("target", ["manifest", "tag"])
def test_a_blob_of_a_locked_manifest_is_not_deletable(
    http: httpx.Client, dockyard_server: DockyardServer, lock: dict[str, bool], target: str
) -> None:
    repo, image = _pushed(dockyard_server, http)
    path = f"/acr/v1/{repo}/_manifests/{image.digest}" if target == "manifest" else f"/acr/v1/{repo}/_tags/v1"
    assert http.patch(path, json=lock).status_code == 200
    for blob in image.blobs:  # the config and every layer
        assert_error(http.delete(f"/v2/{repo}/blobs/{blob.digest}"), 405, "DENIED")
    _assert_whole(http, repo, image)
    # Unlocked again, the blobs can be deleted (locks, not something else, refused the deletes).
    assert http.patch(path, json={key: True for key in lock}).status_code == 200
    assert http.delete(f"/v2/{repo}/blobs/{image.blobs[1].digest}").status_code == 202


def test_a_blob_shared_with_an_unlocked_manifest_is_still_protected(
    http: httpx.Client, dockyard_server: DockyardServer
) -> None:
    repo, image = _pushed(dockyard_server, http)
    # A second manifest of the same repository naming the same blobs, unlocked.
    sibling = make_image(seed=f"{repo}-sibling", layers=1, layer_size=50)
    push(sibling, dockyard_server.url, repo, tag="sibling", client=http)
    assert http.patch(f"/acr/v1/{repo}/_manifests/{image.digest}", json={"deleteEnabled": False}).status_code == 200
    assert_error(http.delete(f"/v2/{repo}/blobs/{image.blobs[1].digest}"), 405, "DENIED")
    # The sibling's own blobs are not locked.
    assert http.delete(f"/v2/{repo}/blobs/{sibling.blobs[1].digest}").status_code == 202
    _assert_whole(http, repo, image)


def test_the_children_of_a_locked_index_keep_their_blobs(http: httpx.Client, dockyard_server: DockyardServer) -> None:
    repo = unique("locks/index")
    amd = make_image(seed=repo, architecture="amd64", layers=1, layer_size=100)
    arm = make_image(seed=repo, architecture="arm64", layers=1, layer_size=100)
    index = make_index([amd, arm])
    push(index, dockyard_server.url, repo, tag="multi", client=http)
    assert http.patch(f"/acr/v1/{repo}/_tags/multi", json={"writeEnabled": False}).status_code == 200
    for child in (amd, arm):
        for blob in child.blobs:
            assert_error(http.delete(f"/v2/{repo}/blobs/{blob.digest}"), 405, "DENIED")
        _assert_whole(http, repo, child)


def test_a_lock_in_another_repository_does_not_protect_this_one(
    http: httpx.Client, dockyard_server: DockyardServer
) -> None:
    repo, image = _pushed(dockyard_server, http)
    other = unique("locks/other")
    push(image, dockyard_server.url, other, tag="v1", client=http)
    assert http.patch(f"/acr/v1/{other}/_manifests/{image.digest}", json={"deleteEnabled": False}).status_code == 200
    assert http.delete(f"/v2/{repo}/blobs/{image.blobs[1].digest}").status_code == 202
    _assert_whole(http, other, image)
