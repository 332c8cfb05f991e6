"""dockyard.layout: OCI image layout directories, unit behaviour and interop with skopeo."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from pathlib import Path

import httpx
import pytest

from dockyard.errors import DigestValidationError
from dockyard.layout import (
    REF_NAME_ANNOTATION,
    BlobNotFoundError,
    LayoutError,
    OCILayout,
    ReferenceNotFoundError,
)
from dockyard.oci import Descriptor, InvalidDigestError, compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.support.images import (
    make_artifact,
    make_image,
    make_multiarch_index,
    make_nested_index,
    push,
    write_to_layout,
)
from tests.support.skopeo import Skopeo


@pytest.fixture
def layout(tmp_path: Path) -> OCILayout:
    return OCILayout(tmp_path / "layout").create()


def _temp_files(layout: OCILayout) -> list[Path]:
    return [p for p in layout.path.rglob("*") if p.name.startswith(".")]


def _assert_blobs_hash_to_names(layout: OCILayout) -> int:
    count = 0
    for path in (layout.path / "blobs").rglob("*"):
        if path.is_file():
            algorithm = path.parent.name
            assert hashlib.new(algorithm, path.read_bytes()).hexdigest() == path.name, path
            count += 1
    return count


# -- creating and opening -----------------------------------------------------------------------------------------


def test_create_writes_marker_and_empty_index(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "new").create()
    assert json.loads(layout.layout_file.read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(layout.index_file.read_text())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    assert (layout.path / "blobs").is_dir()
    assert layout.index() == []


def test_create_keeps_existing_content(layout: OCILayout) -> None:
    desc = layout.write_manifest(make_image(seed="keep").body, tag="v1")
    again = OCILayout(layout.path).create()
    assert again.resolve("v1") == desc


def test_open_requires_a_layout(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        OCILayout.open(tmp_path)
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "9.9.9"}')
    with pytest.raises(LayoutError, match="unsupported imageLayoutVersion"):
        OCILayout.open(tmp_path)
    with pytest.raises(LayoutError):
        OCILayout(tmp_path).create()


def test_open_existing(layout: OCILayout) -> None:
    opened = OCILayout.open(layout.path)
    assert opened.path == layout.path and opened.index() == []


# -- blobs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytes", "file", "chunks"])
def test_write_blob_sources(layout: OCILayout, kind: str) -> None:
    data = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB pieces
    source = {"bytes": data, "file": io.BytesIO(data), "chunks": iter([data[:10], b"", data[10:]])}[kind]
    digest, size = layout.write_blob(source)
    assert digest == compute_digest(data) and size == len(data)
    assert layout.blob_path(digest) == layout.path / "blobs" / "sha256" / digest.split(":")[1]
    assert layout.has_blob(digest) and layout.blob_size(digest) == size
    with layout.open_blob(digest) as fh:
        assert fh.read() == data
    assert _temp_files(layout) == []


def test_write_blob_verifies_expected_digest(layout: OCILayout) -> None:
    wrong = compute_digest(b"something else")
    with pytest.raises(DigestValidationError):
        layout.write_blob(b"payload", wrong)
    assert not layout.has_blob(wrong)
    assert not layout.has_blob(compute_digest(b"payload"))
    assert _temp_files(layout) == []
    assert list(layout.iter_blobs()) == []


def test_write_blob_sha512_and_empty(layout: OCILayout) -> None:
    data = b"sha512 content"
    expected = compute_digest(data, "sha512")
    assert layout.write_blob(data, expected) == (expected, len(data))
    assert layout.blob_path(expected).parent.name == "sha512"
    empty = compute_digest(b"")
    assert layout.write_blob(b"") == (empty, 0)
    assert layout.read_blob(empty) == b""
    assert sorted(layout.iter_blobs()) == sorted([expected, empty])


def test_write_blob_existing_is_not_read_again(layout: OCILayout) -> None:
    digest, _ = layout.write_blob(b"abc")

    class Exploding(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("must not be read")

    assert layout.write_blob(Exploding(), digest) == (digest, 3)


@pytest.mark.parametrize(
    "bad",
    ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "0" * 32, "/etc/passwd", "sha256", ""],
)
def test_blob_path_rejects_bad_digests(layout: OCILayout, bad: str) -> None:
    with pytest.raises(InvalidDigestError):
        layout.blob_path(bad)
    with pytest.raises(InvalidDigestError):
        layout.write_blob(b"x", bad)


def test_missing_blob(layout: OCILayout) -> None:
    missing = compute_digest(b"nope")
    assert not layout.has_blob(missing)
    with pytest.raises(BlobNotFoundError):
        layout.open_blob(missing)
    with pytest.raises(BlobNotFoundError):
        layout.read_manifest(missing)
    with pytest.raises(BlobNotFoundError):
        layout.blob_size(missing)


def test_read_manifest_detects_corruption(layout: OCILayout) -> None:
    image = make_image(seed="corrupt")
    desc = layout.write_manifest(image.body)
    assert layout.read_manifest(desc.digest) == image.body
    layout.blob_path(desc.digest).write_bytes(image.body + b" ")
    with pytest.raises(DigestValidationError):
        layout.read_manifest(desc.digest)


# -- index.json -----------------------------------------------------------------------------------------------------


def test_add_manifest_tags_and_replaces(layout: OCILayout) -> None:
    first, second = make_image(seed="a"), make_image(seed="b")
    d1 = layout.write_manifest(first.body, tag="latest")
    assert d1.annotations == {REF_NAME_ANNOTATION: "latest"}
    assert (d1.digest, d1.size, d1.media_type) == (first.digest, first.size, mt.OCI_MANIFEST)
    layout.write_manifest(first.body, tag="v1")
    d2 = layout.write_manifest(second.body, tag="latest")
    assert layout.tags() == ["v1", "latest"]
    assert layout.resolve("latest") == d2
    assert layout.resolve("v1").digest == first.digest
    assert layout.resolve(first.digest).digest == first.digest
    with pytest.raises(ReferenceNotFoundError):
        layout.resolve("nope")
    document = json.loads(layout.index_file.read_text())
    assert document["mediaType"] == mt.OCI_INDEX and len(document["manifests"]) == 2
    assert _temp_files(layout) == []


def test_add_manifest_untagged_is_not_duplicated(layout: OCILayout) -> None:
    image = make_image(seed="untagged")
    layout.write_manifest(image.body)
    layout.write_manifest(image.body)
    assert [d.digest for d in layout.index()] == [image.digest]
    assert layout.resolve(image.digest).annotations == {}


def test_add_manifest_requires_blob_and_name(layout: OCILayout) -> None:
    ghost = Descriptor(mt.OCI_MANIFEST, compute_digest(b"ghost"), 5)
    with pytest.raises(BlobNotFoundError):
        layout.add_manifest(ghost, "v1")
    image = make_image(seed="named")
    desc = layout.write_manifest(image.body, add_to_index=False)
    assert layout.index() == []
    with pytest.raises(ValueError):
        layout.add_manifest(desc, "")


def test_add_manifest_keeps_foreign_index_fields(layout: OCILayout) -> None:
    document = json.loads(layout.index_file.read_text())
    document["annotations"] = {"org.example": "kept"}
    layout.index_file.write_text(json.dumps(document))
    layout.write_manifest(make_image(seed="foreign").body, tag="x")
    assert json.loads(layout.index_file.read_text())["annotations"] == {"org.example": "kept"}


def test_remove_reference(layout: OCILayout) -> None:
    layout.write_manifest(make_image(seed="rm").body, tag="gone")
    layout.remove_reference("gone")
    assert layout.tags() == []
    with pytest.raises(ReferenceNotFoundError):
        layout.remove_reference("gone")


def test_concurrent_add_manifest_loses_nothing(layout: OCILayout) -> None:
    images = [make_image(seed=f"t{i}", layers=1, layer_size=16) for i in range(16)]
    for image in images:
        write_to_layout(image, layout)
    threads = [
        threading.Thread(target=layout.add_manifest, args=(image.descriptor(with_platform=False), f"tag{i}"))
        for i, image in enumerate(images)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(layout.tags()) == sorted(f"tag{i}" for i in range(16))


def test_write_to_layout_nested_index(layout: OCILayout) -> None:
    index = make_nested_index(seed="nest")
    desc = write_to_layout(index, layout, tag="multi")
    assert desc.media_type == mt.OCI_INDEX and layout.resolve("multi").digest == index.digest
    for manifest in index.walk():
        assert layout.read_manifest(manifest.digest) == manifest.body
    for blob in index.all_blobs():
        assert layout.read_blob(blob.digest) == blob.data
    assert _assert_blobs_hash_to_names(layout) == len(index.all_blobs()) + len(list(index.walk()))


def test_write_manifest_media_type_and_artifact_type(layout: OCILayout) -> None:
    artifact = make_artifact({"a.txt": b"A"}, artifact_type="application/vnd.example.sbom")
    write_to_layout(artifact, layout)
    desc = layout.write_manifest(artifact.body, tag="sbom")
    assert desc.artifact_type == "application/vnd.example.sbom"
    docker = make_image(seed="docker", docker=True)
    assert layout.write_manifest(docker.body).media_type == mt.DOCKER_MANIFEST


# -- interop with skopeo ------------------------------------------------------------------------------------------


def _assert_layout_holds(layout: OCILayout, tag: str, content) -> None:  # type: ignore[no-untyped-def]
    desc = layout.resolve(tag)
    assert desc.digest == content.digest and desc.media_type == content.media_type
    for manifest in content.walk():
        assert layout.read_manifest(manifest.digest) == manifest.body
    for blob in content.all_blobs():
        assert layout.has_blob(blob.digest), blob.digest
        assert layout.read_blob(blob.digest) == blob.data
    _assert_blobs_hash_to_names(layout)


def test_skopeo_reads_and_writes_our_layouts(tmp_path: Path) -> None:
    """Our layout → skopeo → a layout skopeo writes → read by us, byte-identical (no registry involved)."""
    skopeo = Skopeo(tmp_path / "skopeo")
    index = make_multiarch_index(seed="skopeo-oci")
    ours = OCILayout(tmp_path / "ours").create()
    write_to_layout(index, ours, tag="v1")
    skopeo.copy(f"oci:{ours.path}:v1", f"oci:{tmp_path / 'theirs'}:copied", "--all", "--preserve-digests")
    theirs = OCILayout.open(tmp_path / "theirs")
    assert theirs.tags() == ["copied"]
    _assert_layout_holds(theirs, "copied", index)
    raw = json.loads(skopeo.run("inspect", "--raw", f"oci:{ours.path}:v1").stdout)
    assert raw == index.json


def test_layout_roundtrip_through_docker_registry(tmp_path: Path, distribution_server) -> None:  # type: ignore[no-untyped-def]
    """A layout we write is pushed by skopeo to docker-registry; skopeo pulls it into a layout we read."""
    skopeo = Skopeo(tmp_path / "skopeo")
    repo = unique("layout")
    image = make_image(seed="registry-image", layers=3)
    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/arm/v7"), seed="registry-index")
    ours = OCILayout(tmp_path / "ours").create()
    write_to_layout(image, ours, tag="img")
    write_to_layout(index, ours, tag="idx")

    base = f"docker://{distribution_server.host}/{repo}"
    skopeo.copy(f"oci:{ours.path}:img", f"{base}:img", "--preserve-digests")
    skopeo.copy(f"oci:{ours.path}:idx", f"{base}:idx", "--all", "--preserve-digests")
    with httpx.Client() as http:
        for tag, content in (("img", image), ("idx", index)):
            got = http.get(
                f"{distribution_server.url}/v2/{repo}/manifests/{tag}", headers={"Accept": mt.MANIFEST_ACCEPT}
            )
            assert got.status_code == 200
            assert got.content == content.body

    pulled = OCILayout(tmp_path / "pulled")  # skopeo creates it
    skopeo.copy(f"{base}:img", f"oci:{pulled.path}:img", "--preserve-digests")
    skopeo.copy(f"{base}:idx", f"oci:{pulled.path}:idx", "--all", "--preserve-digests")
    pulled = OCILayout.open(pulled.path)
    assert sorted(pulled.tags()) == ["idx", "img"]
    _assert_layout_holds(pulled, "img", image)
    _assert_layout_holds(pulled, "idx", index)


def test_skopeo_pulls_pushed_docker_image_into_layout(tmp_path: Path, distribution_server) -> None:  # type: ignore[no-untyped-def]
    """Docker v2 media types survive registry → skopeo → our reader."""
    skopeo = Skopeo(tmp_path / "skopeo")
    repo = unique("layout-docker")
    image = make_image(seed="docker-v2", docker=True)
    push(image, distribution_server.url, repo, tag="d1")
    target = tmp_path / "pulled"
    skopeo.copy(f"docker://{distribution_server.host}/{repo}:d1", f"oci:{target}:d1", "--preserve-digests")
    _assert_layout_holds(OCILayout.open(target), "d1", image)
