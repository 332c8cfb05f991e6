"""skopeo (Debian, containers/image in Go) pushes to and pulls from ``dockyard serve``.

Content starts in an OCI image layout directory written by dockyard.layout; skopeo copies it into the server and
back into a second layout, and everything must come back byte-identical (same manifest and blob digests).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dockyard.layout import OCILayout
from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.support.images import (
    Content,
    make_image,
    make_multiarch_index,
    make_nested_index,
    push,
    write_to_layout,
)
from tests.support.skopeo import Skopeo

pytestmark = [pytest.mark.peer("skopeo"), pytest.mark.backends]


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo")


def _assert_registry_holds(server, repo: str, tag: str, content: Content) -> None:  # type: ignore[no-untyped-def]
    """The registry serves every manifest and blob of ``content`` with the exact bytes (blob GETs from object
    storage redirect to the store)."""
    with httpx.Client(base_url=server.url, headers={"Accept": mt.MANIFEST_ACCEPT}, follow_redirects=True) as http:
        top = http.get(f"/v2/{repo}/manifests/{tag}")
        assert top.status_code == 200, top.text
        assert top.content == content.body
        assert top.headers["Docker-Content-Digest"] == content.digest
        assert top.headers["Content-Type"] == content.media_type
        for manifest in content.walk():
            got = http.get(f"/v2/{repo}/manifests/{manifest.digest}")
            assert got.status_code == 200 and got.content == manifest.body, manifest.digest
        for blob in content.all_blobs():
            got = http.get(f"/v2/{repo}/blobs/{blob.digest}")
            assert got.status_code == 200 and got.content == blob.data, blob.digest


def _assert_layout_holds(layout: OCILayout, tag: str, content: Content) -> None:
    entry = layout.resolve(tag)
    assert (entry.digest, entry.media_type, entry.size) == (content.digest, content.media_type, content.size)
    for manifest in content.walk():
        assert layout.read_manifest(manifest.digest) == manifest.body
    for blob in content.all_blobs():
        assert layout.read_blob(blob.digest) == blob.data
    expected = {b.digest for b in content.all_blobs()} | {m.digest for m in content.walk()}
    assert set(layout.iter_blobs()) == expected, "nothing more, nothing less"


def test_image_roundtrip_byte_identical(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = unique("skopeo/image")
    image = make_image(layers=4, layer_size=200_000, seed=repo)
    source = OCILayout(tmp_path / "source").create()
    write_to_layout(image, source, tag="v1")

    skopeo.copy(f"oci:{source.path}:v1", f"docker://{dockyard_server.host}/{repo}:v1", "--preserve-digests")
    _assert_registry_holds(dockyard_server, repo, "v1", image)

    back = tmp_path / "back"
    skopeo.copy(f"docker://{dockyard_server.host}/{repo}:v1", f"oci:{back}:v1", "--preserve-digests")
    _assert_layout_holds(OCILayout.open(back), "v1", image)


def test_docker_v2_image_between_repositories(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Docker v2 media types (an OCI layout cannot list them for skopeo): registry → registry and → layout."""
    repo, other = unique("skopeo/docker"), unique("skopeo/docker-copy")
    image = make_image(layers=3, layer_size=100_000, docker=True, seed=repo)
    push(image, dockyard_server.url, repo, tag="v1")
    source, dest = f"docker://{dockyard_server.host}/{repo}:v1", f"docker://{dockyard_server.host}/{other}:v1"
    skopeo.copy(source, dest, "--preserve-digests")
    _assert_registry_holds(dockyard_server, other, "v1", image)
    back = tmp_path / "back"
    skopeo.copy(f"docker://{dockyard_server.host}/{other}:v1", f"oci:{back}:v1", "--preserve-digests")
    _assert_layout_holds(OCILayout.open(back), "v1", image)


def test_multiarch_index_roundtrip_byte_identical(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = unique("skopeo/index")
    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/arm/v7"), layers=2, layer_size=50_000, seed=repo)
    source = OCILayout(tmp_path / "source").create()
    write_to_layout(index, source, tag="multi")

    dest = f"docker://{dockyard_server.host}/{repo}:multi"
    skopeo.copy(f"oci:{source.path}:multi", dest, "--all", "--preserve-digests")
    _assert_registry_holds(dockyard_server, repo, "multi", index)

    back = tmp_path / "back"
    skopeo.copy(dest, f"oci:{back}:multi", "--all", "--preserve-digests")
    _assert_layout_holds(OCILayout.open(back), "multi", index)


def test_docker_manifest_list_roundtrip(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, other = unique("skopeo/list"), unique("skopeo/list-copy")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), docker=True, layer_size=10_000, seed=repo)
    push(index, dockyard_server.url, repo, tag="list")
    source, dest = f"docker://{dockyard_server.host}/{repo}:list", f"docker://{dockyard_server.host}/{other}:list"
    skopeo.copy(source, dest, "--all", "--preserve-digests")
    _assert_registry_holds(dockyard_server, other, "list", index)
    # (skopeo 1.9 cannot write a Docker manifest list into an OCI layout without converting it)


def test_nested_index_inspect(dockyard_server, skopeo: Skopeo) -> None:  # type: ignore[no-untyped-def]
    """skopeo 1.9 cannot copy nested indexes, but reads one the server holds (pushed with raw HTTP)."""
    repo = unique("skopeo/nested")
    index = make_nested_index(seed=repo)
    push(index, dockyard_server.url, repo, tag="nested")
    ref = f"docker://{dockyard_server.host}/{repo}"
    assert skopeo.run("inspect", "--tls-verify=false", "--raw", f"{ref}:nested").stdout.encode() == index.body
    inner = index.children[1]
    assert skopeo.run("inspect", "--tls-verify=false", "--raw", f"{ref}@{inner.digest}").stdout.encode() == inner.body


def test_list_tags(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = unique("skopeo/tags")
    source = OCILayout(tmp_path / "source").create()
    write_to_layout(make_image(layer_size=100, seed=repo), source, tag="src")
    tags = ["1.0", "1.1", "latest", "v2_rc-1"]
    for tag in tags:
        skopeo.copy(f"oci:{source.path}:src", f"docker://{dockyard_server.host}/{repo}:{tag}", "--preserve-digests")
    assert sorted(skopeo.list_tags(f"docker://{dockyard_server.host}/{repo}")) == sorted(tags)


def test_inspect(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = unique("skopeo/inspect")
    image = make_image(layers=3, layer_size=1000, architecture="arm64", seed=repo, created="2023-05-06T07:08:09Z")
    index = make_multiarch_index(seed=f"{repo}-index", layer_size=100)
    source = OCILayout(tmp_path / "source").create()
    write_to_layout(image, source, tag="img")
    write_to_layout(index, source, tag="idx")
    ref = f"docker://{dockyard_server.host}/{repo}"
    skopeo.copy(f"oci:{source.path}:img", f"{ref}:img", "--preserve-digests")
    skopeo.copy(f"oci:{source.path}:idx", f"{ref}:idx", "--all", "--preserve-digests")

    info = skopeo.inspect(f"{ref}:img")
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    assert info["Layers"] == [b.digest for b in image.blobs[1:]]
    assert info["Created"].startswith("2023-05-06T07:08:09")
    assert sorted(info["RepoTags"]) == ["idx", "img"]
    assert skopeo.run("inspect", "--tls-verify=false", "--raw", f"{ref}:img").stdout.encode() == image.body
    config = skopeo.run("inspect", "--tls-verify=false", "--config", "--raw", f"{ref}:img").stdout.encode()
    assert config == image.blobs[0].data

    raw_index = skopeo.run("inspect", "--tls-verify=false", "--raw", f"{ref}:idx").stdout.encode()
    assert raw_index == index.body
    arm = index.children[1]
    by_digest = skopeo.inspect(f"{ref}@{arm.digest}")
    assert by_digest["Digest"] == arm.digest and by_digest["Architecture"] == "arm64"


def test_delete(dockyard_server, skopeo: Skopeo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = unique("skopeo/delete")
    doomed, kept = make_image(layer_size=100, seed=f"{repo}-1"), make_image(layer_size=100, seed=f"{repo}-2")
    source = OCILayout(tmp_path / "source").create()
    write_to_layout(doomed, source, tag="doomed")
    write_to_layout(kept, source, tag="kept")
    ref = f"docker://{dockyard_server.host}/{repo}"
    for tag in ("doomed", "kept"):
        skopeo.copy(f"oci:{source.path}:{tag}", f"{ref}:{tag}", "--preserve-digests")

    skopeo.run("delete", "--tls-verify=false", f"{ref}:doomed")
    with httpx.Client(base_url=dockyard_server.url, headers={"Accept": mt.MANIFEST_ACCEPT}) as http:
        assert http.get(f"/v2/{repo}/manifests/{doomed.digest}").status_code == 404
        assert http.get(f"/v2/{repo}/manifests/doomed").status_code == 404
        assert http.get(f"/v2/{repo}/manifests/kept").content == kept.body
    assert skopeo.list_tags(ref) == ["kept"]
    failed = skopeo.run("inspect", "--tls-verify=false", f"{ref}:doomed", check=False)
    assert failed.returncode != 0
