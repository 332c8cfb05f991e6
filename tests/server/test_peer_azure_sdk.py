"""Microsoft's ``azure-containerregistry`` 1.2 (PyPI) drives ``dockyard serve`` through every public method.

Plain-HTTP loopback servers, so every call passes ``enforce_https=False`` (the SDK's per-call opt-out).
Content is pushed either by the SDK itself or with raw httpx (tests.support.images), never with dockyard's client.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import TEST_USER, unique
from tests.support.images import Content, make_image, make_index, push, random_bytes
from tests.support.peers import require_module

try:
    from azure.containerregistry import (
        ArtifactArchitecture,
        ArtifactManifestOrder,
        ArtifactOperatingSystem,
        ArtifactTagOrder,
        ContainerRegistryClient,
    )
    from azure.containerregistry.aio import ContainerRegistryClient as AsyncContainerRegistryClient
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
except ImportError:  # reported (fail under CI, skip elsewhere) by the autouse fixture below
    pass

pytestmark = [pytest.mark.peer("azure-containerregistry"), pytest.mark.backends]

#: The per-call opt-out of the SDK's TLS check (plain HTTP on loopback).
E: dict[str, Any] = {"enforce_https": False}
AUDIENCE_SCOPE = "https://containerregistry.azure.net/.default"
MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _azure_sdk_installed() -> None:
    require_module("azure.containerregistry", "azure-containerregistry==1.2.0")
    require_module("aiohttp", "aiohttp")


@pytest.fixture
def client(dockyard_server):  # type: ignore[no-untyped-def]
    with ContainerRegistryClient(dockyard_server.url, None) as c:
        yield c


@dataclass
class Pushed:
    """A repository with tags ``t0``…``t4`` pushed one after another, each its own single-image manifest."""

    repo: str
    images: dict[str, Content]  # tag -> image, in push order


PLATFORMS = [("amd64", "linux"), ("arm64", "linux"), ("s390x", "linux"), ("386", "windows"), ("riscv64", "linux")]


@pytest.fixture(scope="module")
def pushed(dockyard_server) -> Pushed:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/ordered")
    images: dict[str, Content] = {}
    for i, (arch, os_name) in enumerate(PLATFORMS):
        image = make_image(layers=1 + i % 2, layer_size=300 + i, architecture=arch, os=os_name, seed=f"ordered-{i}")
        push(image, dockyard_server.url, repo, tag=f"t{i}")
        images[f"t{i}"] = image
        time.sleep(0.01)  # distinct lastUpdateTime values even on coarse clocks
    return Pushed(repo, images)


def _image_size(content: Content) -> int:
    return sum(b.size for b in content.blobs)


def _assert_times(props: Any) -> None:
    assert isinstance(props.created_on, datetime) and props.created_on.tzinfo is not None
    assert isinstance(props.last_updated_on, datetime)
    assert props.created_on <= props.last_updated_on <= datetime.now(timezone.utc)


def _assert_all_enabled(props: Any) -> None:
    assert (props.can_delete, props.can_write, props.can_read, props.can_list) == (True, True, True, True)


# -- repositories -------------------------------------------------------------------------------------------------


def test_list_repository_names_and_paging(client, dockyard_server, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    others = [unique("azsdk/catalog") for _ in range(3)]
    for name in others:
        push(make_image(layers=1, layer_size=64, seed=name), dockyard_server.url, name, tag="x")
    everything = list(client.list_repository_names(**E))
    assert everything == sorted(everything), "the catalog is in lexical order"
    assert len(everything) == len(set(everything))
    assert {pushed.repo, *others} <= set(everything)

    pages = [list(page) for page in client.list_repository_names(results_per_page=2, **E).by_page()]
    assert all(1 <= len(page) <= 2 for page in pages)
    assert len(pages) >= (len(everything) + 1) // 2
    assert [name for page in pages for name in page] == everything


def test_get_repository_properties(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    props = client.get_repository_properties(pushed.repo, **E)
    assert props.name == pushed.repo
    assert props.manifest_count == len(pushed.images)
    assert props.tag_count == len(pushed.images)
    _assert_times(props)
    _assert_all_enabled(props)


def test_get_repository_properties_unknown(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ResourceNotFoundError):
        client.get_repository_properties(unique("azsdk/never-pushed"), **E)


def test_update_repository_properties_both_overloads(client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/repo-locks")
    push(make_image(layers=1, layer_size=32, seed=repo), dockyard_server.url, repo, tag="v1")

    updated = client.update_repository_properties(repo, can_delete=False, can_list=False, **E)
    assert (updated.can_delete, updated.can_list, updated.can_read, updated.can_write) == (False, False, True, True)
    assert updated.name == repo
    again = client.get_repository_properties(repo, **E)
    assert (again.can_delete, again.can_list) == (False, False)
    assert repo not in list(client.list_repository_names(**E)), "listEnabled=false hides the repository"

    with pytest.raises(HttpResponseError) as err:
        client.delete_repository(repo, **E)
    assert err.value.status_code == 405
    assert client.get_repository_properties(repo, **E).manifest_count == 1

    props = client.get_repository_properties(repo, **E)
    props.can_delete = True
    props.can_list = True
    props.can_write = False
    updated = client.update_repository_properties(repo, props, **E)
    assert (updated.can_delete, updated.can_list, updated.can_write) == (True, True, False)
    assert repo in list(client.list_repository_names(**E))
    with pytest.raises(HttpResponseError) as err:
        client.upload_blob(repo, io.BytesIO(b"refused"), **E)
    assert err.value.status_code in (403, 405)

    updated = client.update_repository_properties(repo, can_write=True, **E)
    _assert_all_enabled(updated)
    digest, size = client.upload_blob(repo, io.BytesIO(b"accepted"), **E)
    assert (digest, size) == (compute_digest(b"accepted"), 8)


def test_delete_repository(client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/doomed")
    image = make_image(layers=2, layer_size=100, seed=repo)
    push(image, dockyard_server.url, repo, tag="a")
    push(image, dockyard_server.url, repo, tag="b")
    assert client.delete_repository(repo, **E) is None
    with pytest.raises(ResourceNotFoundError):
        client.get_repository_properties(repo, **E)
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, "a", **E)
    assert repo not in list(client.list_repository_names(**E))
    client.delete_repository(repo, **E)  # a 404 is not an error for the SDK


# -- tags ---------------------------------------------------------------------------------------------------------


def test_list_tag_properties_values(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    tags = list(client.list_tag_properties(pushed.repo, **E))
    assert sorted(t.name for t in tags) == sorted(pushed.images)
    for tag in tags:
        assert tag.digest == pushed.images[tag.name].digest
        _assert_times(tag)
        _assert_all_enabled(tag)


@pytest.mark.parametrize("order", ["enum", "string"])
def test_list_tag_properties_order_both_ways(client, pushed: Pushed, order: str) -> None:  # type: ignore[no-untyped-def]
    desc = ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING if order == "enum" else "timedesc"
    asc = ArtifactTagOrder.LAST_UPDATED_ON_ASCENDING if order == "enum" else "timeasc"
    newest_first = list(client.list_tag_properties(pushed.repo, order_by=desc, **E))
    oldest_first = list(client.list_tag_properties(pushed.repo, order_by=asc, **E))
    push_order = list(pushed.images)
    assert [t.name for t in oldest_first] == push_order
    assert [t.name for t in newest_first] == push_order[::-1]
    times = [t.last_updated_on for t in oldest_first]
    assert times == sorted(times) and len(set(times)) == len(times)
    none_order = list(client.list_tag_properties(pushed.repo, order_by=ArtifactTagOrder.NONE, **E))
    assert sorted(t.name for t in none_order) == sorted(push_order)


def test_list_tag_properties_paging(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    pages = [
        list(page)
        for page in client.list_tag_properties(
            pushed.repo, results_per_page=2, order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING, **E
        ).by_page()
    ]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [t.name for p in pages for t in p] == list(pushed.images)[::-1]
    asc_pages = list(client.list_tag_properties(pushed.repo, results_per_page=3, order_by="timeasc", **E).by_page())
    names = [[t.name for t in page] for page in asc_pages]
    assert names == [["t0", "t1", "t2"], ["t3", "t4"]]
    one_per_page = client.list_tag_properties(pushed.repo, results_per_page=1, **E).by_page()
    unordered = [[t.name for t in p] for p in one_per_page]
    assert len(unordered) == 5 and sorted(n for p in unordered for n in p) == sorted(pushed.images)


def test_get_tag_properties(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    tag = client.get_tag_properties(pushed.repo, "t3", **E)
    assert tag.name == "t3" and tag.digest == pushed.images["t3"].digest
    _assert_times(tag)
    _assert_all_enabled(tag)
    with pytest.raises(ResourceNotFoundError):
        client.get_tag_properties(pushed.repo, "no-such-tag", **E)


def test_update_tag_properties_and_delete_tag(client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/tag-locks")
    first, second = make_image(seed=f"{repo}-1", layer_size=50), make_image(seed=f"{repo}-2", layer_size=50)
    push(first, dockyard_server.url, repo, tag="v1")
    push(first, dockyard_server.url, repo, tag="keep")
    push(second, dockyard_server.url, repo)

    updated = client.update_tag_properties(repo, "v1", can_delete=False, can_write=False, **E)
    assert (updated.name, updated.digest) == ("v1", first.digest)
    assert (updated.can_delete, updated.can_write, updated.can_read, updated.can_list) == (False, False, True, True)
    fetched = client.get_tag_properties(repo, "v1", **E)
    assert (fetched.can_delete, fetched.can_write) == (False, False)

    with pytest.raises(HttpResponseError) as err:
        client.delete_tag(repo, "v1", **E)
    assert err.value.status_code == 405
    with pytest.raises(HttpResponseError) as err:
        client.set_manifest(repo, io.BytesIO(second.body), tag="v1", **E)
    assert err.value.status_code in (403, 405)
    assert client.get_tag_properties(repo, "v1", **E).digest == first.digest

    props = client.get_tag_properties(repo, "v1", **E)
    props.can_delete = True
    props.can_write = True
    updated = client.update_tag_properties(repo, "v1", props, **E)
    _assert_all_enabled(updated)
    assert client.set_manifest(repo, io.BytesIO(second.body), tag="v1", **E) == second.digest
    assert client.get_tag_properties(repo, "v1", **E).digest == second.digest

    assert client.delete_tag(repo, "v1", **E) is None
    with pytest.raises(ResourceNotFoundError):
        client.get_tag_properties(repo, "v1", **E)
    assert [t.name for t in client.list_tag_properties(repo, **E)] == ["keep"]
    # untagging leaves the manifest in place
    assert client.get_manifest(repo, second.digest, **E).digest == second.digest
    client.delete_tag(repo, "v1", **E)  # a 404 is not an error


# -- manifests ----------------------------------------------------------------------------------------------------


def test_list_manifest_properties_values(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    manifests = list(client.list_manifest_properties(pushed.repo, **E))
    by_digest = {m.digest: m for m in manifests}
    assert len(manifests) == len(pushed.images)
    for tag, image in pushed.images.items():
        props = by_digest[image.digest]
        assert props.tags == [tag]
        assert props.repository_name == pushed.repo
        assert props.architecture == image.platform.architecture
        assert props.operating_system == image.platform.os
        assert props.size_in_bytes in (_image_size(image), _image_size(image) + image.size)
        _assert_times(props)
    assert by_digest[pushed.images["t3"].digest].architecture == ArtifactArchitecture.I386
    assert by_digest[pushed.images["t3"].digest].operating_system == ArtifactOperatingSystem.WINDOWS


def test_list_manifest_properties_order_and_paging(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    push_order = [image.digest for image in pushed.images.values()]
    asc = [m.digest for m in client.list_manifest_properties(
        pushed.repo, order_by=ArtifactManifestOrder.LAST_UPDATED_ON_ASCENDING, **E)]
    desc = [m.digest for m in client.list_manifest_properties(pushed.repo, order_by="timedesc", **E)]
    assert asc == push_order
    assert desc == push_order[::-1]
    pages = [
        [m.digest for m in page]
        for page in client.list_manifest_properties(
            pushed.repo, results_per_page=2, order_by=ArtifactManifestOrder.LAST_UPDATED_ON_DESCENDING, **E
        ).by_page()
    ]
    assert pages == [push_order[4:2:-1], push_order[2:0:-1], push_order[:1]]
    four_per_page = client.list_manifest_properties(pushed.repo, results_per_page=4, **E).by_page()
    plain = [[m.digest for m in p] for p in four_per_page]
    assert [len(p) for p in plain] == [4, 1]
    assert sorted(d for p in plain for d in p) == sorted(push_order)


def test_get_manifest_properties_by_tag_and_digest(client, dockyard_server, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    image = pushed.images["t1"]
    # By tag the SDK first calls get_tag_properties *without* the caller's kwargs, so over plain HTTP its TLS check
    # fires: the tag form is covered in test_manifest_methods_by_tag_over_tls.
    by_digest = client.get_manifest_properties(pushed.repo, image.digest, **E)
    for props in (by_digest,):
        assert props.digest == image.digest
        assert props.tags == ["t1"]
        assert props.architecture == ArtifactArchitecture.ARM64
        assert props.operating_system == ArtifactOperatingSystem.LINUX
        assert props.repository_name == pushed.repo
        assert props.fully_qualified_reference == f"{dockyard_server.host}/{pushed.repo}@{image.digest[7:]}"
        _assert_times(props)
        _assert_all_enabled(props)
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest_properties(pushed.repo, "sha256:" + "0" * 64, **E)


def test_index_manifest_properties(client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/index")
    arm = make_image(architecture="arm64", seed=f"{repo}-arm", layer_size=40)
    amd = make_image(architecture="amd64", seed=f"{repo}-amd", layer_size=40)
    index = make_index([amd, arm])
    push(index, dockyard_server.url, repo, tag="multi")
    props = client.get_manifest_properties(repo, index.digest, **E)
    assert props.digest == index.digest and props.tags == ["multi"]
    listed = {m.digest: m for m in client.list_manifest_properties(repo, **E)}
    assert set(listed) == {index.digest, arm.digest, amd.digest}
    assert listed[arm.digest].architecture == "arm64" and listed[arm.digest].tags == []
    # the index's platform references (wire field `references`) are visible on the metadata API
    raw = httpx.get(f"{dockyard_server.url}/acr/v1/{repo}/_manifests/{index.digest}").json()["manifest"]
    refs = {r["digest"]: (r.get("architecture"), r.get("os")) for r in raw["references"]}
    assert refs == {amd.digest: ("amd64", "linux"), arm.digest: ("arm64", "linux")}
    assert raw["mediaType"] == mt.OCI_INDEX


def test_update_manifest_properties_locks(client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/manifest-locks")
    image = make_image(seed=repo, layer_size=70)
    push(image, dockyard_server.url, repo, tag="v1")

    updated = client.update_manifest_properties(repo, image.digest, can_delete=False, can_write=False, **E)
    assert updated.digest == image.digest
    assert (updated.can_delete, updated.can_write, updated.can_read, updated.can_list) == (False, False, True, True)
    got = client.get_manifest_properties(repo, image.digest, **E)
    assert (got.can_delete, got.can_write) == (False, False)

    with pytest.raises(HttpResponseError) as err:
        client.delete_manifest(repo, image.digest, **E)
    assert err.value.status_code == 405
    assert client.get_manifest(repo, "v1", **E).digest == image.digest

    props = client.get_manifest_properties(repo, image.digest, **E)
    props.can_delete = True
    props.can_write = True
    props.can_read = False
    updated = client.update_manifest_properties(repo, image.digest, props, **E)
    assert (updated.can_delete, updated.can_write, updated.can_read) == (True, True, False)
    with pytest.raises(HttpResponseError) as err:
        client.get_manifest(repo, image.digest, **E)
    assert 400 <= err.value.status_code < 500

    updated = client.update_manifest_properties(repo, image.digest, can_read=True, can_list=False, **E)
    assert (updated.can_read, updated.can_list) == (True, False)
    assert image.digest not in [m.digest for m in client.list_manifest_properties(repo, **E)]
    client.update_manifest_properties(repo, image.digest, can_list=True, **E)
    assert [m.digest for m in client.list_manifest_properties(repo, **E)] == [image.digest]


def test_delete_manifest_by_tag_and_digest(client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/delete-manifest")
    a, b = make_image(seed=f"{repo}-a", layer_size=30), make_image(seed=f"{repo}-b", layer_size=30)
    push(a, dockyard_server.url, repo, tag="a")
    push(b, dockyard_server.url, repo, tag="b")
    assert client.delete_manifest(repo, a.digest, **E) is None
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, a.digest, **E)
    with pytest.raises(ResourceNotFoundError):
        client.get_tag_properties(repo, "a", **E)
    client.delete_manifest(repo, b.digest, **E)
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, "b", **E)
    with pytest.raises(ResourceNotFoundError):  # as on ACR, deleting the last manifest removes the repository
        list(client.list_manifest_properties(repo, **E))
    client.delete_manifest(repo, b.digest, **E)  # a 404 on the DELETE is not an error


# -- set_manifest / get_manifest ----------------------------------------------------------------------------------


def _upload_image_blobs(client, repo: str, content: Content) -> None:  # type: ignore[no-untyped-def]
    for blob in content.blobs:
        digest, size = client.upload_blob(repo, io.BytesIO(blob.data), **E)
        assert (digest, size) == (blob.digest, blob.size)


def test_set_and_get_oci_manifest_dict(client) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/set-manifest")
    image = make_image(seed=repo, layers=2, layer_size=200)
    _upload_image_blobs(client, repo, image)
    manifest = image.json
    digest = client.set_manifest(repo, manifest, tag="v1", **E)
    assert digest == compute_digest(json.dumps(manifest).encode())  # the SDK sends json.dumps(dict)
    for ref in ("v1", digest):
        result = client.get_manifest(repo, ref, **E)
        assert result.manifest == manifest
        assert result.media_type == mt.OCI_MANIFEST
        assert result.digest == digest
    untagged = client.set_manifest(repo, manifest, **E)
    assert untagged == digest


def test_set_and_get_index_and_docker_manifest_io(client) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/set-index")
    amd = make_image(seed=f"{repo}-amd", layer_size=80)
    arm = make_image(seed=f"{repo}-arm", architecture="arm64", layer_size=80)
    for image in (amd, arm):
        _upload_image_blobs(client, repo, image)
        assert client.set_manifest(repo, io.BytesIO(image.body), **E) == image.digest
    index = make_index([amd, arm])
    digest = client.set_manifest(repo, io.BytesIO(index.body), tag="multi", media_type=mt.OCI_INDEX, **E)
    assert digest == index.digest
    got = client.get_manifest(repo, "multi", **E)
    assert got.media_type == mt.OCI_INDEX and got.digest == index.digest and got.manifest == index.json
    assert [m["digest"] for m in got.manifest["manifests"]] == [amd.digest, arm.digest]

    docker = make_image(seed=f"{repo}-docker", docker=True, layer_size=80)
    _upload_image_blobs(client, repo, docker)
    pushed_digest = client.set_manifest(repo, io.BytesIO(docker.body), tag="d", media_type=mt.DOCKER_MANIFEST, **E)
    assert pushed_digest == docker.digest
    got = client.get_manifest(repo, docker.digest, **E)
    assert got.media_type == mt.DOCKER_MANIFEST and got.manifest == docker.json
    assert client.get_manifest_properties(repo, docker.digest, **E).size_in_bytes > 0

    docker_arm = make_image(seed=f"{repo}-docker-arm", docker=True, architecture="arm64", layer_size=80)
    _upload_image_blobs(client, repo, docker_arm)
    client.set_manifest(repo, io.BytesIO(docker_arm.body), media_type=mt.DOCKER_MANIFEST, **E)
    manifest_list = make_index([docker, docker_arm], docker=True)
    listed = client.set_manifest(
        repo, io.BytesIO(manifest_list.body), tag="list", media_type=mt.DOCKER_MANIFEST_LIST, **E
    )
    assert listed == manifest_list.digest
    got = client.get_manifest(repo, "list", **E)
    assert got.media_type == mt.DOCKER_MANIFEST_LIST and got.digest == manifest_list.digest
    assert [m["platform"]["architecture"] for m in got.manifest["manifests"]] == ["amd64", "arm64"]


def test_set_manifest_with_missing_blobs_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/missing-blobs")
    image = make_image(seed=repo)
    with pytest.raises(HttpResponseError) as err:
        client.set_manifest(repo, image.json, tag="v1", **E)
    assert err.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, "v1", **E)


# -- blobs --------------------------------------------------------------------------------------------------------


def test_upload_download_delete_blob_multi_chunk(client) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/blobs")
    data = random_bytes(2 * 4 * MiB + 4321, seed=repo)  # three PATCHes up, three Range GETs down
    digest, size = client.upload_blob(repo, io.BytesIO(data), **E)
    assert (digest, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    stream = client.download_blob(repo, digest, **E)
    assert b"".join(stream) == data
    small_digest, small_size = client.upload_blob(repo, io.BytesIO(b"tiny blob"), **E)
    assert (small_digest, small_size) == (compute_digest(b"tiny blob"), 9)
    with client.download_blob(repo, small_digest, **E) as small:
        assert b"".join(small) == b"tiny blob"

    assert client.delete_blob(repo, digest, **E) is None
    with pytest.raises(ResourceNotFoundError):
        client.download_blob(repo, digest, **E)
    client.delete_blob(repo, digest, **E)  # a 404 is swallowed
    assert b"".join(client.download_blob(repo, small_digest, **E)) == b"tiny blob"


def test_download_unknown_blob(client, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ResourceNotFoundError):
        client.download_blob(pushed.repo, compute_digest(b"never uploaded"), **E)


# -- async client -------------------------------------------------------------------------------------------------


async def test_async_client_everything(dockyard_server, pushed: Pushed) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/async")
    data = random_bytes(4 * MiB + 17, seed=repo)
    async with AsyncContainerRegistryClient(dockyard_server.url, None) as client:
        names = [n async for n in client.list_repository_names(**E)]
        assert pushed.repo in names
        pages = []
        paged = client.list_tag_properties(pushed.repo, results_per_page=2, order_by="timeasc", **E)
        async for page in paged.by_page():
            pages.append([t.name async for t in page])
        assert pages == [["t0", "t1"], ["t2", "t3"], ["t4"]]
        desc = [m.digest async for m in client.list_manifest_properties(
            pushed.repo, order_by=ArtifactManifestOrder.LAST_UPDATED_ON_DESCENDING, **E)]
        assert desc == [i.digest for i in pushed.images.values()][::-1]

        digest, size = await client.upload_blob(repo, io.BytesIO(data), **E)
        assert (digest, size) == (compute_digest(data), len(data))
        stream = await client.download_blob(repo, digest, **E)
        assert b"".join([chunk async for chunk in stream]) == data

        image = make_image(seed=repo, layer_size=60)
        for blob in image.blobs:
            assert await client.upload_blob(repo, io.BytesIO(blob.data), **E) == (blob.digest, blob.size)
        assert await client.set_manifest(repo, io.BytesIO(image.body), tag="v1", **E) == image.digest
        got = await client.get_manifest(repo, "v1", **E)
        assert got.manifest == image.json and got.digest == image.digest and got.media_type == mt.OCI_MANIFEST

        repo_props = await client.get_repository_properties(repo, **E)
        assert (repo_props.name, repo_props.manifest_count, repo_props.tag_count) == (repo, 1, 1)
        repo_props = await client.update_repository_properties(repo, can_list=False, **E)
        assert repo_props.can_list is False
        await client.update_repository_properties(repo, can_list=True, **E)

        tag = await client.update_tag_properties(repo, "v1", can_delete=False, **E)
        assert tag.can_delete is False and tag.digest == image.digest
        with pytest.raises(HttpResponseError) as err:
            await client.delete_tag(repo, "v1", **E)
        assert err.value.status_code == 405
        tag = await client.update_tag_properties(repo, "v1", can_delete=True, **E)
        assert (await client.get_tag_properties(repo, "v1", **E)).can_delete is True

        manifest = await client.update_manifest_properties(repo, image.digest, can_write=False, **E)
        assert manifest.can_write is False and manifest.digest == image.digest
        manifest = await client.get_manifest_properties(repo, image.digest, **E)
        assert manifest.can_write is False and manifest.tags == ["v1"] and manifest.architecture == "amd64"
        await client.update_manifest_properties(repo, image.digest, can_write=True, **E)

        await client.delete_tag(repo, "v1", **E)
        with pytest.raises(ResourceNotFoundError):
            await client.get_tag_properties(repo, "v1", **E)
        await client.delete_manifest(repo, image.digest, **E)
        with pytest.raises(ResourceNotFoundError):
            await client.get_manifest(repo, image.digest, **E)
        await client.delete_blob(repo, digest, **E)
        with pytest.raises(ResourceNotFoundError):
            await client.download_blob(repo, digest, **E)
        await client.delete_repository(repo, **E)
        with pytest.raises(ResourceNotFoundError):
            await client.get_repository_properties(repo, **E)


# -- credential modes ---------------------------------------------------------------------------------------------


class StandInCredential:
    """What azure-identity's credentials look like to the SDK: ``get_token(*scopes) -> AccessToken``."""

    def __init__(self, token: str = "opaque-entra-id-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class AsyncStandInCredential(StandInCredential):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass


def test_credential_none_against_no_auth_server(dockyard_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/anon")
    with ContainerRegistryClient(dockyard_server.url, credential=None) as client:
        digest, size = client.upload_blob(repo, io.BytesIO(b"anonymous write"), **E)
        assert digest == compute_digest(b"anonymous write") and size == 15
        assert b"".join(client.download_blob(repo, digest, **E)) == b"anonymous write"
        with pytest.raises(ResourceNotFoundError):  # as on ACR, a repository exists once it holds a manifest
            client.get_repository_properties(repo, **E)


def test_stand_in_credential_against_auth_server(dockyard_auth_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/aad")
    credential = StandInCredential()
    image = make_image(seed=repo, layers=2, layer_size=4 * MiB + 10)  # each layer needs two chunks
    with ContainerRegistryClient(dockyard_auth_server.url, credential) as client:
        for blob in image.blobs:
            assert client.upload_blob(repo, io.BytesIO(blob.data), **E) == (blob.digest, blob.size)
        assert client.set_manifest(repo, io.BytesIO(image.body), tag="v1", **E) == image.digest
        assert repo in list(client.list_repository_names(**E))
        assert [t.name for t in client.list_tag_properties(repo, **E)] == ["v1"]
        got = client.get_manifest(repo, "v1", **E)
        assert got.digest == image.digest and got.manifest == image.json
        layer = image.blobs[1]
        assert b"".join(client.download_blob(repo, layer.digest, **E)) == layer.data
        props = client.update_tag_properties(repo, "v1", can_write=False, **E)
        assert props.can_write is False
        manifest_props = client.get_manifest_properties(repo, image.digest, **E)
        assert manifest_props.architecture == "amd64" and manifest_props.tags == ["v1"]
        with pytest.raises(HttpResponseError) as err:  # as in ACR, writeEnabled=false also protects from deletion
            client.delete_manifest(repo, image.digest, **E)
        assert err.value.status_code == 405
        assert client.update_tag_properties(repo, "v1", can_write=True, **E).can_write is True
        client.delete_manifest(repo, image.digest, **E)
        with pytest.raises(ResourceNotFoundError):
            client.get_manifest(repo, image.digest, **E)
        client.delete_repository(repo, **E)
    assert credential.scopes, "the challenge flow asked the credential for a token"
    assert set(credential.scopes) == {(AUDIENCE_SCOPE,)}


def test_credential_none_against_auth_server_is_refused(dockyard_auth_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/refused")
    push(make_image(seed=repo, layer_size=10), dockyard_auth_server.url, repo, tag="v1", auth=TEST_USER)
    with ContainerRegistryClient(dockyard_auth_server.url, None) as client:
        with pytest.raises(ClientAuthenticationError):
            client.get_repository_properties(repo, **E)
        with pytest.raises(ClientAuthenticationError):
            client.upload_blob(repo, io.BytesIO(b"nope"), **E)


def test_empty_aad_token_is_refused(dockyard_auth_server) -> None:  # type: ignore[no-untyped-def]
    credential = StandInCredential(token="")
    with ContainerRegistryClient(dockyard_auth_server.url, credential) as client, pytest.raises(
        ClientAuthenticationError
    ):
        list(client.list_repository_names(**E))


async def test_async_stand_in_credential_against_auth_server(dockyard_auth_server) -> None:  # type: ignore[no-untyped-def]
    repo = unique("azsdk/aad-async")
    credential = AsyncStandInCredential()
    image = make_image(seed=repo, layer_size=500)
    async with AsyncContainerRegistryClient(dockyard_auth_server.url, credential) as client:
        for blob in image.blobs:
            assert await client.upload_blob(repo, io.BytesIO(blob.data), **E) == (blob.digest, blob.size)
        assert await client.set_manifest(repo, image.json, tag="v1", **E) == compute_digest(
            json.dumps(image.json).encode()
        )
        names = [n async for n in client.list_repository_names(**E)]
        assert repo in names
        tags = [t async for t in client.list_tag_properties(repo, **E)]
        assert [t.name for t in tags] == ["v1"]
        got = await client.get_manifest(repo, "v1", **E)
        assert got.manifest == image.json
        await client.delete_repository(repo, **E)
        with pytest.raises(ResourceNotFoundError):
            await client.get_repository_properties(repo, **E)
    assert credential.scopes and set(credential.scopes) == {(AUDIENCE_SCOPE,)}


# -- tag forms of the manifest methods, over TLS ------------------------------------------------------------------


@pytest.fixture
def tls_client(dockyard_server, tmp_path):  # type: ignore[no-untyped-def]
    """A client on ``https://`` (a TLS relay in front of the server): no ``enforce_https`` needed at all."""
    from tests.support.tls import TLSRelay

    with TLSRelay(dockyard_server.port, tmp_path / "tls") as relay, ContainerRegistryClient(
        relay.url, None, connection_verify=False
    ) as client:
        yield client


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_manifest_methods_by_tag_over_tls(tls_client, dockyard_server) -> None:  # type: ignore[no-untyped-def]
    """get/update/delete_manifest by tag look the tag up first without the caller's kwargs: HTTPS only."""
    client = tls_client
    repo = unique("azsdk/by-tag")
    image, other = make_image(seed=repo, layer_size=90), make_image(seed=f"{repo}-2", layer_size=90)
    push(image, dockyard_server.url, repo, tag="v1")
    push(other, dockyard_server.url, repo, tag="v2")

    props = client.get_manifest_properties(repo, "v1")
    assert (props.digest, props.tags, props.architecture) == (image.digest, ["v1"], ArtifactArchitecture.AMD64)
    assert props.fully_qualified_reference.endswith(f"/{repo}@{image.digest[7:]}")
    updated = client.update_manifest_properties(repo, "v1", can_delete=False)
    assert updated.digest == image.digest and updated.can_delete is False
    with pytest.raises(HttpResponseError) as err:
        client.delete_manifest(repo, "v1")
    assert err.value.status_code == 405
    props = client.get_manifest_properties(repo, "v1")
    props.can_delete = True
    assert client.update_manifest_properties(repo, "v1", props).can_delete is True
    client.delete_manifest(repo, "v1")
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, image.digest)
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest_properties(repo, "v1")  # the tag lookup's 404
    with pytest.raises(ResourceNotFoundError):
        client.delete_manifest(repo, "v1")  # a 404 on the tag lookup is an error, unlike one on the DELETE
    assert [t.name for t in client.list_tag_properties(repo)] == ["v2"]
    assert client.get_manifest(repo, "v2").digest == other.digest
