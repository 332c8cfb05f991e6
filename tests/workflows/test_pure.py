"""Pure helpers of the workflows and the CLI: artifact manifests, index filtering, names and URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.cli.connect import endpoint_url
from dockyard.cli.copy import parse_location
from dockyard.cli.errors import UsageError
from dockyard.cli.options import GlobalOptions
from dockyard.oci import Platform, compute_digest, parse_manifest
from dockyard.oci.manifest import Descriptor
from dockyard.workflows.artifacts import DEFAULT_ARTIFACT_TYPE, FileSpec, build_manifest
from dockyard.workflows.copy import CopyError, filter_index
from dockyard.workflows.stores import ManifestBlob
from tests.support.images import make_multiarch_index


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("myregistry.azurecr.io", "https://myregistry.azurecr.io"),
        ("10.0.0.5:5000", "https://10.0.0.5:5000"),
        ("http://10.0.0.5:5000/", "http://10.0.0.5:5000"),
        ("https://127.0.0.1:5000", "https://127.0.0.1:5000"),
    ],
)
def test_endpoint_url(given: str, expected: str) -> None:
    assert endpoint_url(given) == expected


@pytest.mark.parametrize("given", ["", "http://", "host/path", "https://host/v2", "a b"])
def test_bad_endpoints(given: str) -> None:
    with pytest.raises(UsageError):
        endpoint_url(given)


def test_loopback() -> None:
    from dockyard.oci.hosts import is_loopback

    assert is_loopback("127.0.0.2:80") and is_loopback("localhost") and not is_loopback("example.com:5000")


def test_locations() -> None:
    options = GlobalOptions()
    assert parse_location("oci:./dir:v1", options).layout == Path("./dir")
    assert parse_location("oci:./dir:v1", options).reference == "v1"
    assert parse_location("oci:/a/b", options).reference is None
    digest = "sha256:" + "a" * 64
    loc = parse_location(f"oci:/a/b@{digest}", options)
    assert (loc.layout, loc.reference) == (Path("/a/b"), digest)
    loc = parse_location("127.0.0.1:5000/team/app:v2", options)
    assert (loc.registry, loc.repository, loc.reference) == ("127.0.0.1:5000", "team/app", "v2")
    with pytest.raises(UsageError):
        parse_location("Bad Name:v1", options)


def test_file_spec(tmp_path: Path) -> None:
    (tmp_path / "a:b.txt").write_text("x")
    assert FileSpec.parse(str(tmp_path / "a:b.txt")).media_type is None
    spec = FileSpec.parse("model.bin:application/vnd.example.model")
    assert (spec.path, spec.media_type) == (Path("model.bin"), "application/vnd.example.model")
    assert FileSpec.parse("c:notamediatype").media_type is None


def test_artifact_manifest() -> None:
    layer = Descriptor("text/plain", compute_digest(b"x"), 1, annotations={"org.opencontainers.image.title": "x"})
    subject = Descriptor("application/vnd.oci.image.manifest.v1+json", compute_digest(b"s"), 1,
                         annotations={"dropped": "yes"})
    body = build_manifest([layer], annotations={"k": "v"}, subject=subject)
    parsed = parse_manifest(body)
    assert parsed.artifact_type == DEFAULT_ARTIFACT_TYPE
    assert parsed.config is not None and parsed.config.size == 2 and parsed.config.data == "e30="
    assert parsed.layers == (layer,)
    assert parsed.subject == Descriptor(subject.media_type, subject.digest, subject.size)
    empty = parse_manifest(build_manifest([], artifact_type="application/x"))
    assert [d.media_type for d in empty.layers] == ["application/vnd.oci.empty.v1+json"]


def test_filter_index() -> None:
    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/arm/v7"), seed="filter", layers=1)
    blob = ManifestBlob(index.body, index.media_type, index.digest)
    only = filter_index(blob, [Platform.parse("linux/arm")])
    document = json.loads(only.body)
    assert [m["platform"]["variant"] for m in document["manifests"]] == ["v7"]
    assert only.digest == compute_digest(only.body) != index.digest
    assert document["mediaType"] == json.loads(index.body)["mediaType"]
    with pytest.raises(CopyError):
        filter_index(blob, [Platform.parse("windows/amd64")])
