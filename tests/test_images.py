"""The test-content builders (tests.support.images) produce valid, reproducible OCI and Docker content."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile

import pytest

from dockyard.oci import compute_digest, parse_image_config, parse_manifest
from dockyard.oci import mediatypes as mt
from tests.support.images import (
    EMPTY_JSON,
    TITLE_ANNOTATION,
    make_artifact,
    make_image,
    make_index,
    make_multiarch_index,
    make_nested_index,
)


def test_image_is_valid_and_reproducible() -> None:
    image = make_image(layers=3, layer_size=500, architecture="arm64", variant="v8", seed=7)
    again = make_image(layers=3, layer_size=500, architecture="arm64", variant="v8", seed=7)
    other = make_image(layers=3, layer_size=500, architecture="arm64", variant="v8", seed=8)
    assert image.body == again.body and image.digest == again.digest
    assert other.digest != image.digest
    manifest = parse_manifest(image.body, image.media_type)
    assert manifest.media_type == mt.OCI_MANIFEST
    assert [d.digest for d in manifest.blobs()] == [b.digest for b in image.blobs]
    assert [d.size for d in manifest.blobs()] == [b.size for b in image.blobs]
    config = parse_image_config(image.blobs[0].data)
    assert config is not None and config.created == "2024-01-02T03:04:05Z"
    assert (config.platform.os, config.platform.architecture, config.platform.variant) == ("linux", "arm64", "v8")
    diff_ids = json.loads(image.blobs[0].data)["rootfs"]["diff_ids"]
    for layer, diff_id in zip(image.blobs[1:], diff_ids, strict=True):
        raw = gzip.decompress(layer.data)
        assert compute_digest(raw) == diff_id
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            assert tar.getmembers()[0].size == 500


def test_docker_image_media_types() -> None:
    image = make_image(docker=True, seed=1)
    doc = image.json
    assert doc["mediaType"] == mt.DOCKER_MANIFEST and doc["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert {layer["mediaType"] for layer in doc["layers"]} == {mt.DOCKER_LAYER}
    with pytest.raises(ValueError):
        make_image(docker=True, artifact_type="application/x")


def test_indexes() -> None:
    index = make_multiarch_index(("linux/amd64", "linux/arm/v7"), seed=2)
    parsed = parse_manifest(index.body)
    assert parsed.is_index and [str(d.platform) for d in parsed.manifests] == ["linux/amd64", "linux/arm/v7"]
    assert [d.digest for d in parsed.manifests] == [c.digest for c in index.children]
    listing = make_multiarch_index(docker=True, seed=3)
    assert listing.media_type == mt.DOCKER_MANIFEST_LIST
    with pytest.raises(ValueError):
        make_index([make_image(seed=4)], docker=True)
    nested = make_nested_index(seed=5)
    walked = list(nested.walk())
    assert walked[-1] is nested and len(walked) == 5
    assert nested.json["manifests"][1]["mediaType"] == mt.OCI_INDEX and "platform" not in nested.json["manifests"][1]
    assert len(nested.all_blobs()) == 3 * 3


def test_artifact() -> None:
    subject = make_image(seed=6)
    artifact = make_artifact({"a.txt": b"A", "b.bin": b"BB"}, artifact_type="application/vnd.example", subject=subject)
    doc = artifact.json
    assert doc["artifactType"] == "application/vnd.example"
    assert doc["config"]["mediaType"] == mt.OCI_EMPTY and doc["config"]["size"] == 2
    assert base64.b64decode(doc["config"]["data"]) == EMPTY_JSON
    assert [layer["annotations"][TITLE_ANNOTATION] for layer in doc["layers"]] == ["a.txt", "b.bin"]
    assert doc["subject"] == {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    manifest = parse_manifest(artifact.body)
    assert manifest.subject is not None and manifest.subject.digest == subject.digest
    assert manifest.effective_artifact_type == "application/vnd.example"
    empty = make_artifact({})
    assert [layer["mediaType"] for layer in empty.json["layers"]] == [mt.OCI_EMPTY]
