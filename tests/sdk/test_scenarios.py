"""One scenario suite, run by the sync and the async client against every backend.

Backends: ``dockyard serve`` (no auth; htpasswd + BasicCredential; htpasswd + an Entra ID stand-in) and
Debian's ``docker-registry`` (no auth; htpasswd + BasicCredential). Content the scenarios only read is
pushed over raw HTTP; content the scenarios write goes through the SDK and is read back both ways.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from dockyard import (
    ArtifactArchitecture,
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactOperatingSystem,
    ArtifactTagOrder,
    ArtifactTagProperties,
    ClientAuthenticationError,
    OperationNotAllowedError,
    RepositoryProperties,
    ResourceNotFoundError,
    UnsupportedOperationError,
)
from dockyard.oci.digest import compute_digest
from dockyard.oci.mediatypes import OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from tests.conftest import TEST_USER, unique
from tests.sdk.conftest import Api, Backend, Seeder

MISSING = "sha256:" + "0" * 64


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _image_manifest(config: bytes, config_digest: str, layers: list[tuple[str, int]], **extra: object) -> dict:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    manifest.update(extra)
    return manifest


async def _push_via_sdk(api: Api, repo: str, tag: str | None, layer: bytes, arch: str = "amd64") -> tuple[str, dict]:
    config = canonical({"architecture": arch, "os": "linux", "created": "2024-02-02T00:00:00Z",
                        "rootfs": {"type": "layers", "diff_ids": [compute_digest(layer)]}})
    config_digest, _ = await api.upload_blob(repo, config)
    layer_digest, layer_size = await api.upload_blob(repo, layer)
    manifest = _image_manifest(config, config_digest, [(layer_digest, layer_size)])
    digest = await api.set_manifest(repo, manifest, tag=tag)
    return digest, manifest


# -- push and pull ------------------------------------------------------------------------------------


async def test_upload_download_round_trip(api: Api, backend: Backend, repo_name: str, tmp_path: Path) -> None:
    small = b"small layer " + repo_name.encode()
    digest, size = await api.upload_blob(repo_name, small)
    assert (digest, size) == (compute_digest(small), len(small))

    # A larger blob from a path, with progress reporting (big enough to be chunked).
    big = os.urandom(9 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    progress: list[int] = []
    big_digest, big_size = await api.upload_blob(repo_name, path, progress=progress.append)
    assert (big_digest, big_size) == (compute_digest(big), len(big))
    assert sum(progress) == len(big)

    # From a stream.
    streamed = b"streamed " * 1000
    assert await api.upload_blob(repo_name, io.BytesIO(streamed)) == (compute_digest(streamed), len(streamed))
    # Known digest already present: returns the same answer (the upload is skipped).
    assert await api.upload_blob(repo_name, streamed, digest=compute_digest(streamed)) == (
        compute_digest(streamed),
        len(streamed),
    )

    assert await api.blob_exists(repo_name, big_digest) is True
    assert await api.blob_exists(repo_name, MISSING) is False
    assert await api.read_blob(repo_name, big_digest) == big
    assert await api.read_blob(repo_name, digest) == small
    assert await api.read_blob(repo_name, big_digest, offset=1000) == big[1000:]
    target = tmp_path / "out" / "big.copy"
    target.parent.mkdir()
    assert await api.download_blob_to_file(repo_name, big_digest, target) == len(big)
    assert target.read_bytes() == big
    empty_digest, empty_size = await api.upload_blob(repo_name, b"")
    assert (empty_digest, empty_size) == (compute_digest(b""), 0)
    assert await api.read_blob(repo_name, empty_digest) == b""

    # Manifests: a dict, exact bytes, and an index.
    config = canonical({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_digest, _ = await api.upload_blob(repo_name, config)
    manifest = _image_manifest(config, config_digest, [(digest, size), (big_digest, big_size)])
    manifest_digest = await api.set_manifest(repo_name, manifest, tag="v1")
    result = await api.get_manifest(repo_name, "v1")
    assert result.digest == manifest_digest
    assert result.manifest == manifest
    assert result.media_type == OCI_MANIFEST
    assert compute_digest(result.content) == manifest_digest
    by_digest = await api.get_manifest(repo_name, manifest_digest)
    assert by_digest.manifest == manifest

    exact = json.dumps(manifest, indent=3).encode()  # odd formatting: must be stored verbatim
    exact_digest = await api.upload_manifest(repo_name, exact, tag="v1-pretty")
    assert exact_digest == compute_digest(exact)
    downloaded = await api.download_manifest(repo_name, "v1-pretty")
    assert downloaded.data.read() == exact
    assert downloaded.digest == exact_digest

    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(result.content),
         "platform": {"architecture": "arm64", "os": "linux"}}]})
    index_digest = await api.set_manifest(repo_name, index, tag="multi", media_type=OCI_INDEX)
    assert index_digest == compute_digest(index)
    got_index = await api.get_manifest(repo_name, "multi")
    assert got_index.media_type == OCI_INDEX
    assert got_index.manifest["manifests"][0]["digest"] == manifest_digest

    descriptor = await api.get_manifest_descriptor(repo_name, "multi")
    assert (descriptor.digest, descriptor.size, descriptor.media_type) == (index_digest, len(index), OCI_INDEX)
    with pytest.raises(ResourceNotFoundError) as missing:
        await api.get_manifest(repo_name, "no-such-tag")
    assert missing.value.status_code == 404
    assert missing.value.error_code == "MANIFEST_UNKNOWN"
    with pytest.raises(ResourceNotFoundError):
        await api.get_manifest_descriptor(repo_name, "no-such-tag")
    with pytest.raises(ResourceNotFoundError):
        await api.read_blob(repo_name, MISSING)


async def test_sdk_writes_read_back_over_raw_http(api: Api, seed: Seeder, repo_name: str) -> None:
    """What the SDK pushes is exactly what another client pulls."""
    data = os.urandom(5 * 1024 * 1024 + 7)
    digest, _ = await api.upload_blob(repo_name, data)
    assert seed.http.get(f"{seed.url}/v2/{repo_name}/blobs/{digest}").content == data
    manifest_digest, manifest = await _push_via_sdk(api, repo_name, "raw", b"raw layer " + repo_name.encode())
    response = seed.http.get(
        f"{seed.url}/v2/{repo_name}/manifests/raw", headers={"Accept": OCI_MANIFEST}
    )
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == manifest_digest == compute_digest(response.content)
    assert json.loads(response.content) == manifest


async def test_transfer_progress(api: Api, repo_name: str, tmp_path: Path) -> None:
    data = os.urandom(6 * 1024 * 1024 + 5)
    digest, _ = await api.upload_blob(repo_name, data)
    seen: list[int] = []
    assert await api.read_blob(repo_name, digest, progress=seen.append) == data
    assert sum(seen) == len(data)
    seen.clear()
    assert await api.download_blob_to_file(repo_name, digest, tmp_path / "f", progress=seen.append) == len(data)
    assert sum(seen) == len(data)


async def test_nested_repository_names(api: Api, backend: Backend, repo_name: str) -> None:
    nested = f"team/{repo_name}/app"
    digest, manifest = await _push_via_sdk(api, nested, "v1", b"nested layer")
    await api.set_manifest(nested, manifest, tag="v2")
    assert nested in await api.items("list_repository_names")
    assert sorted(t.name for t in await api.items("list_tag_properties", nested)) == ["v1", "v2"]
    assert (await api.get_tag_properties(nested, "v1")).repository_name == nested
    props = await api.get_manifest_properties(nested, "v1")
    assert (props.digest, props.repository_name) == (digest, nested)
    assert props.fully_qualified_reference.endswith(f"/{nested}@{digest}")
    assert (await api.get_repository_properties(nested)).name == nested
    await api.delete_tag(nested, "v2")
    assert [t.name for t in await api.items("list_tag_properties", nested)] == ["v1"]


async def test_registry_capabilities(api: Api, backend: Backend) -> None:
    assert await api.has_acr_api() is backend.acr


# -- listing and paging -------------------------------------------------------------------------------


@pytest.fixture
def listed(backend: Backend, seed: Seeder, repo_name: str) -> dict:
    """Four images tagged t1..t4 (pushed and created in that order) and an index over t1 and t2."""
    images = [
        seed.image(repo_name, f"t{i}", architecture=arch, created=f"2024-0{i}-01T00:00:00Z")
        for i, arch in zip(range(1, 5), ["amd64", "arm64", "amd64", "arm64"], strict=True)
    ]
    index = seed.index(repo_name, "multi", images[:2])
    return {"images": images, "index": index}


async def test_list_repositories(api: Api, backend: Backend, listed: dict, repo_name: str) -> None:
    names = await api.items("list_repository_names")
    assert repo_name in names
    pages = await api.pages("list_repository_names", results_per_page=2)
    assert all(len(page) <= 2 for page in pages)
    assert [name for page in pages for name in page] == names


async def test_list_tags_order_and_paging(api: Api, backend: Backend, listed: dict, repo_name: str) -> None:
    images = listed["images"]
    tags = await api.items("list_tag_properties", repo_name)
    assert sorted(t.name for t in tags) == ["multi", "t1", "t2", "t3", "t4"]
    by_name = {t.name: t for t in tags}
    for i, image in enumerate(images, 1):
        assert by_name[f"t{i}"].digest == image.digest
        assert by_name[f"t{i}"].repository_name == repo_name
        assert isinstance(by_name[f"t{i}"].last_updated_on, datetime)
    assert by_name["multi"].digest == listed["index"].digest

    def images_only(items: list[ArtifactTagProperties]) -> list[str]:
        return [t.name for t in items if t.name != "multi"]

    desc = await api.items("list_tag_properties", repo_name, order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING)
    asc = await api.items("list_tag_properties", repo_name, order_by="timeasc")
    assert images_only(desc) == ["t4", "t3", "t2", "t1"]
    assert images_only(asc) == ["t1", "t2", "t3", "t4"]

    # results_per_page holds on every backend (docker-registry ignores ``n`` on tags/list: the SDK pages itself).
    pages = await api.pages("list_tag_properties", repo_name, results_per_page=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(t.name for page in pages for t in page) == ["multi", "t1", "t2", "t3", "t4"]
    desc_pages = await api.pages(
        "list_tag_properties", repo_name, order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING, results_per_page=2
    )
    assert [t.name for page in desc_pages for t in page] == [t.name for t in desc]


async def test_list_manifests_order_and_paging(api: Api, backend: Backend, listed: dict, repo_name: str) -> None:
    images, index = listed["images"], listed["index"]
    manifests = await api.items("list_manifest_properties", repo_name)
    by_digest = {m.digest: m for m in manifests}
    assert set(by_digest) == {i.digest for i in images} | {index.digest}
    for i, (image, arch) in enumerate(zip(images, ["amd64", "arm64", "amd64", "arm64"], strict=True), 1):
        props = by_digest[image.digest]
        assert props.architecture == arch
        assert props.operating_system == ArtifactOperatingSystem.LINUX
        assert props.tags == [f"t{i}"]
        assert props.repository_name == repo_name
        assert props.size_in_bytes and props.size_in_bytes > 0
    index_props = by_digest[index.digest]
    assert index_props.tags == ["multi"]
    assert index_props.media_type == OCI_INDEX
    assert sorted(r.digest for r in index_props.references) == sorted(i.digest for i in images[:2])

    pushed_order = [i.digest for i in images]
    desc = await api.items(
        "list_manifest_properties", repo_name, order_by=ArtifactManifestOrder.LAST_UPDATED_ON_DESCENDING
    )
    asc = await api.items(
        "list_manifest_properties", repo_name, order_by=ArtifactManifestOrder.LAST_UPDATED_ON_ASCENDING
    )
    assert [m.digest for m in desc if m.digest in pushed_order] == pushed_order[::-1]
    assert [m.digest for m in asc if m.digest in pushed_order] == pushed_order
    pages = await api.pages("list_manifest_properties", repo_name, results_per_page=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert {m.digest for page in pages for m in page} == set(by_digest)


# -- properties and locks -----------------------------------------------------------------------------


async def test_properties(api: Api, backend: Backend, listed: dict, repo_name: str, seed: Seeder) -> None:
    images = listed["images"]
    repo = await api.get_repository_properties(repo_name)
    assert isinstance(repo, RepositoryProperties)
    assert repo.name == repo_name
    if backend.acr:
        assert (repo.tag_count, repo.manifest_count) == (5, 5)
        assert repo.created_on <= repo.last_updated_on

    tag = await api.get_tag_properties(repo_name, "t2")
    assert (tag.name, tag.digest, tag.repository_name) == ("t2", images[1].digest, repo_name)
    assert tag.created_on.tzinfo is not None

    by_tag = await api.get_manifest_properties(repo_name, "t2")
    by_digest = await api.get_manifest_properties(repo_name, images[1].digest)
    assert by_tag.digest == by_digest.digest == images[1].digest
    assert by_tag.architecture is ArtifactArchitecture.ARM64
    assert by_tag.operating_system is ArtifactOperatingSystem.LINUX
    assert by_digest.tags == ["t2"]
    assert by_digest.fully_qualified_reference.endswith(f"/{repo_name}@{images[1].digest}")

    odd = seed.image(repo_name, "odd", architecture="loong64", os="plan10")
    odd_props = await api.get_manifest_properties(repo_name, "odd")
    assert odd_props.digest == odd.digest
    assert odd_props.architecture == "loong64" and not isinstance(odd_props.architecture, ArtifactArchitecture)
    assert odd_props.operating_system == "plan10"

    with pytest.raises(ResourceNotFoundError):
        await api.get_tag_properties(repo_name, "absent")
    with pytest.raises(ResourceNotFoundError):
        await api.get_manifest_properties(repo_name, MISSING)
    with pytest.raises(ResourceNotFoundError):
        await api.get_repository_properties(unique("absent"))


async def test_locks(api: Api, backend: Backend, listed: dict, repo_name: str) -> None:
    image = listed["images"][0]
    if not backend.acr:
        with pytest.raises(UnsupportedOperationError):
            await api.update_manifest_properties(repo_name, "t1", can_delete=False)
        with pytest.raises(UnsupportedOperationError):
            await api.update_tag_properties(repo_name, "t1", ArtifactTagProperties(can_write=False))
        with pytest.raises(UnsupportedOperationError):
            await api.update_repository_properties(repo_name, can_delete=False)
        # Nothing changed: the manifest can still be deleted.
        await api.delete_manifest(repo_name, image.digest)
        with pytest.raises(ResourceNotFoundError):
            await api.get_manifest(repo_name, image.digest)
        return

    locked = await api.update_manifest_properties(repo_name, "t1", can_delete=False, can_write=False)
    assert (locked.digest, locked.can_delete, locked.can_write, locked.can_read) == (image.digest, False, False, True)
    fetched = await api.get_manifest_properties(repo_name, image.digest)
    assert (fetched.can_delete, fetched.can_write) == (False, False)
    with pytest.raises(OperationNotAllowedError):
        await api.delete_manifest(repo_name, image.digest)
    unlocked = await api.update_manifest_properties(
        repo_name, image.digest, ArtifactManifestProperties(can_delete=True, can_write=True)
    )
    assert (unlocked.can_delete, unlocked.can_write) == (True, True)

    tag = await api.update_tag_properties(repo_name, "t2", ArtifactTagProperties(can_delete=False))
    assert (tag.name, tag.can_delete, tag.can_write) == ("t2", False, True)
    assert (await api.get_tag_properties(repo_name, "t2")).can_delete is False
    with pytest.raises(OperationNotAllowedError):
        await api.delete_tag(repo_name, "t2")
    assert (await api.update_tag_properties(repo_name, "t2", can_delete=True)).can_delete is True

    repo = await api.update_repository_properties(repo_name, RepositoryProperties(can_delete=False, can_write=False))
    assert (repo.name, repo.can_delete, repo.can_write, repo.can_list) == (repo_name, False, False, True)
    with pytest.raises(OperationNotAllowedError):
        await api.delete_repository(repo_name)
    repo = await api.update_repository_properties(repo_name, can_delete=True, can_write=True)
    assert (repo.can_delete, repo.can_write) == (True, True)
    await api.delete_repository(repo_name)
    with pytest.raises(ResourceNotFoundError):
        await api.get_repository_properties(repo_name)


# -- deletes ------------------------------------------------------------------------------------------


async def test_deletes(api: Api, backend: Backend, seed: Seeder, repo_name: str) -> None:
    kept = seed.image(repo_name, "keep")
    seed.tag(repo_name, "drop", kept)
    other = seed.image(repo_name, "other", created="2024-06-01T00:00:00Z")

    await api.delete_tag(repo_name, "drop")
    with pytest.raises(ResourceNotFoundError):
        await api.get_tag_properties(repo_name, "drop")
    assert (await api.get_manifest(repo_name, kept.digest)).digest == kept.digest
    assert (await api.get_tag_properties(repo_name, "keep")).digest == kept.digest
    assert (await api.get_tag_properties(repo_name, "other")).digest == other.digest
    assert sorted(t.name for t in await api.items("list_tag_properties", repo_name)) == ["keep", "other"]
    await api.delete_tag(repo_name, "never-existed")  # like the original: a missing tag is not an error

    await api.delete_manifest(repo_name, other.digest)
    with pytest.raises(ResourceNotFoundError):
        await api.get_manifest(repo_name, other.digest)
    with pytest.raises(ResourceNotFoundError):
        await api.get_tag_properties(repo_name, "other")
    await api.delete_manifest(repo_name, other.digest)  # already gone: not an error

    layer_digest = other.blobs[1].digest
    assert await api.blob_exists(repo_name, layer_digest) is True
    await api.delete_blob(repo_name, layer_digest)
    assert await api.blob_exists(repo_name, layer_digest) is False
    await api.delete_blob(repo_name, layer_digest)  # 404 swallowed

    await api.delete_repository(repo_name)
    with pytest.raises(ResourceNotFoundError):
        await api.get_manifest(repo_name, kept.digest)
    if backend.acr:
        with pytest.raises(ResourceNotFoundError):
            await api.get_repository_properties(repo_name)
        assert repo_name not in await api.items("list_repository_names")


# -- referrers, exists, mount -------------------------------------------------------------------------


async def test_referrers(api: Api, backend: Backend, seed: Seeder, repo_name: str) -> None:
    image = seed.image(repo_name, "app")
    empty_digest, empty_size = await api.upload_blob(repo_name, b"{}")
    sbom = b'{"sbom": true}'
    sbom_digest, sbom_size = await api.upload_blob(repo_name, sbom)
    artifact = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {"mediaType": OCI_EMPTY, "digest": empty_digest, "size": empty_size},
        "layers": [{"mediaType": "application/json", "digest": sbom_digest, "size": sbom_size}],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.size},
    }
    artifact_digest = await api.set_manifest(repo_name, artifact)
    referrers = await api.list_referrers(repo_name, image.digest)
    assert [(r.digest, r.artifact_type) for r in referrers] == [(artifact_digest, "application/vnd.example.sbom.v1")]
    filtered = await api.list_referrers(repo_name, image.digest, artifact_type="application/vnd.example.sbom.v1")
    assert [r.digest for r in filtered] == [artifact_digest]
    assert await api.list_referrers(repo_name, image.digest, artifact_type="application/vnd.example.other") == []
    assert await api.list_referrers(repo_name, artifact_digest) == []


async def test_blob_exists_and_mount(api: Api, backend: Backend, repo_name: str) -> None:
    target = unique("mount-target")
    data = b"mountable " + repo_name.encode()
    digest, _ = await api.upload_blob(repo_name, data)
    assert await api.blob_exists(repo_name, digest) is True
    assert await api.blob_exists(target, digest) is False
    assert await api.mount_blob(target, digest, repo_name) is True
    assert await api.blob_exists(target, digest) is True
    assert await api.read_blob(target, digest) == data
    # A blob the source does not hold cannot be mounted: the registry refuses and the SDK says so.
    assert await api.mount_blob(target, MISSING, repo_name) is False
    assert await api.blob_exists(target, MISSING) is False
    # The pushed image in the target works end to end.
    digest_m, manifest = await _push_via_sdk(api, target, "mounted", b"layer in target")
    assert (await api.get_manifest(target, "mounted")).manifest == manifest
    assert (await api.get_tag_properties(target, "mounted")).digest == digest_m


# -- credentials that do not fit ----------------------------------------------------------------------


@pytest.mark.parametrize("server_fixture", ["dockyard_auth_server", "distribution_auth_server"])
async def test_wrong_or_missing_credentials(
    request: pytest.FixtureRequest, flavour: str, server_fixture: str, repo_name: str
) -> None:
    from dockyard import ContainerRegistryClient
    from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
    from dockyard.credentials import BasicCredential

    server = request.getfixturevalue(server_fixture)
    client_class = AsyncContainerRegistryClient if flavour == "async" else ContainerRegistryClient
    for credential in (BasicCredential(TEST_USER[0], "not-the-password"), None):
        api = Api(client_class(server.url, credential), flavour == "async")
        try:
            with pytest.raises(ClientAuthenticationError) as caught:
                await api.get_manifest(repo_name, "v1")
            assert caught.value.status_code == 401
            with pytest.raises(ClientAuthenticationError):
                await api.upload_blob(repo_name, b"denied")
        finally:
            await api.close_client()
