"""The pure OCI data model: digests, names, references, manifest parsing."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.oci import (
    Digest,
    Hasher,
    InvalidDigestError,
    InvalidManifestError,
    InvalidReferenceError,
    Platform,
    Reference,
    compute_digest,
    is_valid_repository,
    is_valid_tag,
    parse_image_config,
    parse_manifest,
)
from dockyard.oci import mediatypes as mt

SHA = "sha256:" + "a" * 64


@given(st.binary(max_size=4096), st.sampled_from(["sha256", "sha512"]))
def test_streaming_hash_equals_one_shot(data: bytes, algorithm: str) -> None:
    hasher = Hasher(algorithm)
    for start in range(0, len(data), 7):
        hasher.update(data[start : start + 7])
    assert hasher.digest == f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    assert hasher.size == len(data)
    assert Digest.parse(hasher.digest).algorithm == algorithm


def test_empty_blob_digest() -> None:
    assert compute_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:" + "A" * 64,  # uppercase hex is not canonical
        "sha256:" + "a" * 63,
        "sha512:" + "a" * 64,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:../../etc/passwd",
        "SHA256:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",  # "$" matches before a trailing newline: the grammar is matched whole
    ],
)
def test_invalid_digests_are_rejected(value: str) -> None:
    with pytest.raises(InvalidDigestError):
        Digest.parse(value)


def test_hasher_copy_is_independent() -> None:
    hasher = Hasher()
    hasher.update(b"abc")
    clone = hasher.copy()
    clone.update(b"def")
    assert hasher.digest == compute_digest(b"abc")
    assert clone.digest == compute_digest(b"abcdef")


@pytest.mark.parametrize("name", ["a", "library/hello", "a.b_c__d-e/f--g", "x" * 255])
def test_valid_repository_names(name: str) -> None:
    assert is_valid_repository(name)


@pytest.mark.parametrize("name", ["", "A", "../etc", "/abs", "a//b", "a/", "-a", "a..b", "x" * 256, "a b",
                                  "a\n", "library/hello\n"])
def test_invalid_repository_names(name: str) -> None:
    assert not is_valid_repository(name)


@pytest.mark.parametrize(("tag", "ok"), [("v1", True), ("_x", True), ("V1.2-rc_3", True), (".x", False),
                                         ("-x", False), ("a" * 128, True), ("a" * 129, False), ("a:b", False),
                                         ("v1\n", False), ("v1\n\n", False), ("\nv1", False)])
def test_tag_grammar(tag: str, ok: bool) -> None:
    assert is_valid_tag(tag) is ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", Reference(None, "hello")),
        ("hello:v1", Reference(None, "hello", "v1")),
        ("library/hello:v1", Reference(None, "library/hello", "v1")),
        ("localhost:5000/a/b:t", Reference("localhost:5000", "a/b", "t")),
        ("127.0.0.1:5000/a@" + SHA, Reference("127.0.0.1:5000", "a", None, SHA)),
        ("reg.io/a:t@" + SHA, Reference("reg.io", "a", "t", SHA)),
        ("http://127.0.0.1:5000/a:t", Reference("http://127.0.0.1:5000", "a", "t")),
    ],
)
def test_reference_parse(text: str, expected: Reference) -> None:
    assert Reference.parse(text) == expected
    assert str(Reference.parse(text)) == text


def test_reference_identifier_and_default_registry() -> None:
    ref = Reference.parse("a/b", default_registry="r.io")
    assert ref.registry == "r.io"
    assert ref.identifier == "latest"
    assert Reference.parse("a@" + SHA).identifier == SHA


@pytest.mark.parametrize("text", ["", "UPPER:tag", "a:", "a@sha256:zz", "a:-bad", " a", "http://host"])
def test_reference_errors(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Reference.parse(text)


def _descriptor(media_type: str = mt.OCI_LAYER_GZIP, digest: str = SHA, size: int = 1) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": size}


def test_parse_image_manifest_with_subject_and_foreign_layer() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": _descriptor(mt.OCI_EMPTY, "sha256:" + "c" * 64, 2),
            "layers": [_descriptor(), _descriptor(mt.OCI_LAYER_NONDISTRIBUTABLE, "sha256:" + "f" * 64, 5)],
            "subject": _descriptor(mt.OCI_MANIFEST, "sha256:" + "b" * 64, 10),
            "annotations": {"k": "v"},
        }
    ).encode()
    manifest = parse_manifest(body, mt.OCI_MANIFEST)
    assert not manifest.is_index
    assert manifest.subject is not None and manifest.subject.digest == "sha256:" + "b" * 64
    assert manifest.effective_artifact_type == "application/vnd.example.sig"
    assert [d.digest for d in manifest.blobs()] == ["sha256:" + "c" * 64, SHA]


def test_parse_index_with_platforms() -> None:
    child = _descriptor(mt.OCI_MANIFEST) | {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
    manifest = parse_manifest(json.dumps({"schemaVersion": 2, "manifests": [child]}).encode())
    assert manifest.is_index and manifest.media_type == mt.OCI_INDEX
    assert manifest.manifests[0].platform == Platform("linux", "arm64", "v8")
    assert manifest.manifests[0].platform.matches(Platform.parse("linux/arm64"))
    assert not manifest.manifests[0].platform.matches(Platform.parse("linux/amd64"))


def test_effective_artifact_type_falls_back_to_config_media_type() -> None:
    body = json.dumps({"schemaVersion": 2, "config": _descriptor("application/x-custom"), "layers": []}).encode()
    assert parse_manifest(body).effective_artifact_type == "application/x-custom"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", mt.OCI_MANIFEST),
        (b"[]", mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 1, "config": _descriptor(), "layers": []}).encode(), mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "layers": []}).encode(), mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode(), mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "config": _descriptor(digest="sha256:x"), "layers": []}).encode(), None),
        (json.dumps({"schemaVersion": 2, "config": _descriptor(size=-1), "layers": []}).encode(), None),
        (json.dumps({"schemaVersion": 2, "manifests": "nope", "mediaType": mt.OCI_INDEX}).encode(), None),
        (b" " * (mt.MAX_MANIFEST_SIZE + 1), None),
    ],
)
def test_invalid_manifests(body: bytes, content_type: str | None) -> None:
    with pytest.raises(InvalidManifestError):
        parse_manifest(body, content_type)


def test_image_config() -> None:
    config = parse_image_config(json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z"})
                                .encode())
    assert config is not None
    assert config.platform == Platform("linux", "amd64")
    assert config.created == "2024-01-02T03:04:05Z"
    assert parse_image_config(b"\x00binary") is None


def test_image_config_runtime_settings() -> None:
    config = parse_image_config(json.dumps({
        "architecture": "arm64", "os": "linux",
        "config": {"Entrypoint": ["/bin/app"], "Cmd": ["-v"], "Env": ["A=1"], "Labels": {"k": "v", "n": 1},
                   "WorkingDir": "/srv", "User": "app"},
    }).encode())
    assert config is not None
    assert (config.entrypoint, config.cmd, config.env) == (("/bin/app",), ("-v",), ("A=1",))
    assert (config.labels, config.working_dir, config.user) == ({"k": "v"}, "/srv", "app")
    # Absent or of the wrong type: read as absent, never an error.
    odd = parse_image_config(json.dumps({"config": {"Entrypoint": "/bin/sh", "Cmd": None, "Env": [1],
                                                    "Labels": [], "User": 0}}).encode())
    assert odd is not None
    assert (odd.entrypoint, odd.cmd, odd.env, odd.labels, odd.working_dir, odd.user) == (None, None, (), {}, None, None)
    assert parse_image_config(json.dumps({"config": "nope"}).encode()) == parse_image_config(b"{}")
