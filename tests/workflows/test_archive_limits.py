"""Hostile archives, built here with tarfile, are refused by the archive readers with a typed error."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.errors import DigestValidationError
from dockyard.oci import compute_digest
from dockyard.workflows.archives import ArchiveLimits, DockerArchiveSource, OCIArchiveSource
from dockyard.workflows.safetar import ArchiveError, TarIndex


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE,
        link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def build(path: Path, fill: Callable[[tarfile.TarFile], object]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        fill(tar)
    return path


def pax(name: str, value: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.pax_headers = {"comment": value}
    return info


CASES: dict[str, tuple[Callable[[tarfile.TarFile], object], str]] = {
    "parent": (lambda tar: add(tar, "../manifest.json", b"[]"), "not a relative path"),
    "nested parent": (lambda tar: add(tar, "a/../../manifest.json", b"[]"), "not a relative path"),
    "absolute": (lambda tar: add(tar, "/manifest.json", b"[]"), "not a relative path"),
    "backslash": (lambda tar: add(tar, "..\\manifest.json", b"[]"), "not a relative path"),
    "escaping link": (lambda tar: add(tar, "manifest.json", kind=tarfile.SYMTYPE, link="../../etc/passwd"),
                      "outside the archive"),
    "absolute link": (lambda tar: add(tar, "manifest.json", kind=tarfile.SYMTYPE, link="/etc/passwd"),
                      "absolute path"),
    "hard link out": (lambda tar: add(tar, "manifest.json", kind=tarfile.LNKTYPE, link="../x"),
                      "not a relative path"),
    "link loop": (lambda tar: (add(tar, "manifest.json", kind=tarfile.SYMTYPE, link="a"),
                               add(tar, "a", kind=tarfile.SYMTYPE, link="manifest.json")), "chain of more than"),
    "device": (lambda tar: add(tar, "manifest.json", kind=tarfile.CHRTYPE), "not a regular file"),
    "fifo": (lambda tar: add(tar, "manifest.json", kind=tarfile.FIFOTYPE), "not a regular file"),
    "sparse": (lambda tar: add(tar, "manifest.json", kind=tarfile.GNUTYPE_SPARSE), "sparse"),
    "given twice": (lambda tar: (add(tar, "manifest.json", b"[]"), add(tar, "./manifest.json", b"[]")), "twice"),
    "huge manifest.json": (lambda tar: add(tar, "manifest.json", b"[" + b" " * (4 * 1024 * 1024) + b"]"),
                           "the limit is"),
    "huge tar header": (lambda tar: tar.addfile(pax("manifest.json", "x" * (2 * 1024 * 1024))), "tar header"),
    "no manifest.json": (lambda tar: add(tar, "hello.txt", b"hi"), "no manifest.json"),
    "manifest.json not a list": (lambda tar: add(tar, "manifest.json", b"{}"), "non-empty list"),
    "layer path climbs out": (lambda tar: add(tar, "manifest.json", json.dumps(
        [{"Config": "c.json", "RepoTags": [], "Layers": ["../l.tar"]}]).encode()), "not a relative path"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_docker_archive_refused(tmp_path: Path, case: str) -> None:
    fill, message = CASES[case]
    archive = build(tmp_path / "hostile.tar", fill)
    with pytest.raises(ArchiveError, match=message):
        DockerArchiveSource(archive)


def test_oci_archive_index_json_bounded(tmp_path: Path) -> None:
    def fill(tar: tarfile.TarFile) -> None:
        add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(tar, "index.json", b'{"manifests":[' + b" " * (4 * 1024 * 1024) + b"]}")

    with pytest.raises(ArchiveError, match="the limit is"):
        OCIArchiveSource(build(tmp_path / "big-index.tar", fill))


def test_member_count_bounded(tmp_path: Path) -> None:
    archive = build(tmp_path / "many.tar", lambda tar: [add(tar, f"f{i}", b"x") for i in range(50)])
    assert len(list(TarIndex(archive, max_members=50).names())) == 50
    with pytest.raises(ArchiveError, match="more than 49 members"):
        TarIndex(archive, max_members=49)


def docker_archive_with_gzip_layer(path: Path, payload: bytes) -> Path:
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as inner:
        add(inner, "big.bin", payload)
    raw = layer_tar.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [compute_digest(raw)]}}).encode()

    def fill(tar: tarfile.TarFile) -> None:
        add(tar, "config.json", config)
        add(tar, "layer.tar.gz", gzip.compress(raw, mtime=0))
        add(tar, "manifest.json", json.dumps(
            [{"Config": "config.json", "RepoTags": ["demo/app:v1"], "Layers": ["layer.tar.gz"]}]).encode())

    return build(path, fill)


def test_decompression_bounded(tmp_path: Path) -> None:
    """A small gzip layer that inflates past the layer limit is refused while it is being read."""
    archive = docker_archive_with_gzip_layer(tmp_path / "bomb.tar", b"\0" * (4 * 1024 * 1024))
    assert archive.stat().st_size < 64 * 1024
    source = DockerArchiveSource(archive, ArchiveLimits(max_layer_size=1024 * 1024))
    with pytest.raises(ArchiveError, match="decompresses to more than 1048576 bytes"):
        source.resolve("demo/app:v1")
    # Within the limit the same layer is read, its digest and diff_id computed.
    manifest = json.loads(DockerArchiveSource(archive).resolve("demo/app:v1").body)
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_uncompressed_layer_verified_as_it_streams(tmp_path: Path) -> None:
    raw = b"not the layer the config promises".ljust(1024, b"\0")
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [compute_digest(b"other")]}}).encode()

    def fill(tar: tarfile.TarFile) -> None:
        add(tar, "config.json", config)
        add(tar, "layer.tar", raw)
        add(tar, "manifest.json", json.dumps(
            [{"Config": "config.json", "RepoTags": None, "Layers": ["layer.tar"]}]).encode())

    source = DockerArchiveSource(build(tmp_path / "a.tar", fill))
    manifest = json.loads(source.resolve(source.default_reference()).body)
    with source.open_blob(manifest["layers"][0]["digest"]) as stream, pytest.raises(DigestValidationError):
        stream.read(len(raw))


def test_compressed_archive_named(tmp_path: Path) -> None:
    plain = build(tmp_path / "plain.tar", lambda tar: add(tar, "manifest.json", b"[]"))
    packed = tmp_path / "packed.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(ArchiveError, match="compressed file: decompress it first"):
        TarIndex(packed)


def test_layers_stream_through_memory(tmp_path: Path) -> None:
    """A 32 MiB layer goes oci-archive -> docker-archive (decompressed, diff_id checked) and back to an oci-archive
    without ever being held whole in memory."""
    import tracemalloc

    from dockyard.layout import OCILayout
    from dockyard.workflows.archives import DockerArchiveWriter, OCIArchiveWriter
    from dockyard.workflows.copy import copy_image
    from tests.support.images import make_image, write_to_layout

    size = 32 * 1024 * 1024
    image = make_image(seed="stream", layers=1, layer_size=size)
    layout_dir = tmp_path / "layout"
    write_to_layout(image, OCILayout(layout_dir).create(), "v1")
    source_file = tmp_path / "source.tar"
    with tarfile.open(source_file, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(layout_dir / name, arcname=name)
    del image

    tracemalloc.start()
    try:
        with DockerArchiveWriter(tmp_path / "docker.tar") as writer:
            copy_image(OCIArchiveSource(source_file), "v1", writer, "demo/app:v1")
        with OCIArchiveWriter(tmp_path / "again.tar") as again:
            copy_image(DockerArchiveSource(tmp_path / "docker.tar"), "demo/app:v1", again, "v1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 3, peak  # about 8 MiB of 1 MiB buffers, whatever the layer size
    with tarfile.open(tmp_path / "docker.tar") as tar:
        listing = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert tar.getmember(listing[0]["Layers"][0]).size > size


def test_writer_that_failed_half_way_cannot_commit(tmp_path: Path) -> None:
    from dockyard.oci import Descriptor
    from dockyard.workflows.archives import OCIArchiveWriter

    target = tmp_path / "out.tar"
    writer = OCIArchiveWriter(target)
    wrong = Descriptor("application/octet-stream", compute_digest(b"expected"), 8)
    with pytest.raises(DigestValidationError):
        writer.write_blob(io.BytesIO(b"tampered"), wrong, lambda n: None)
    with pytest.raises(ArchiveError, match="failed half-way"):
        writer.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
