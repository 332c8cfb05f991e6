"""``dockyard copy`` with ``docker-archive:`` and ``oci-archive:``: round trips through skopeo and ``dockyard serve``,
and hostile archives refused with one line, a non-zero exit and nothing written."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import httpx

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.cli.conftest import Cli, repo_tags
from tests.support.images import Blob, Content, make_image, make_multiarch_index, push
from tests.support.peers import require_program
from tests.support.servers import DockyardServer, subprocess_env
from tests.support.skopeo import Skopeo


def diff_ids(config: bytes) -> list[str]:
    return json.loads(config)["rootfs"]["diff_ids"]


def raw_manifest(server: DockyardServer, repository: str, reference: str) -> bytes:
    """The exact manifest bytes the registry serves (straight over HTTP: the copy is what is under test)."""
    response = httpx.get(f"{server.url}/v2/{repository}/manifests/{reference}",
                         headers={"Accept": ", ".join([mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST])})
    assert response.status_code == 200, response.text
    return response.content


def manifest_of(server: DockyardServer, repository: str, reference: str) -> dict:
    return json.loads(raw_manifest(server, repository, reference))


def config_of(server: DockyardServer, repository: str, manifest: dict) -> bytes:
    response = httpx.get(f"{server.url}/v2/{repository}/blobs/{manifest['config']['digest']}")
    assert response.status_code == 200
    return response.content


def layer_of(server: DockyardServer, repository: str, digest: str) -> bytes:
    response = httpx.get(f"{server.url}/v2/{repository}/blobs/{digest}")
    assert response.status_code == 200
    return response.content


def image_diff_ids(image: Content) -> list[str]:
    return diff_ids(image.blobs[0].data)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_dockyard_reads_what_skopeo_writes(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    reg = dockyard_server.host
    skopeo = Skopeo(tmp_path / "skopeo")
    image = make_image(seed=repo_name, layers=2, layer_size=50_000)
    push(image, dockyard_server.url, repo_name, "v1")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=f"{repo_name}-multi", layers=1)
    push(index, dockyard_server.url, repo_name, "multi")

    # docker-archive: skopeo decompresses the layers; dockyard pushes them as they are (digest = diff_id).
    docker_file = tmp_path / "image.docker.tar"
    skopeo.copy(f"docker://{reg}/{repo_name}:v1", f"docker-archive:{docker_file}:example.com/app:v1")
    result = cli("copy", f"docker-archive:{docker_file}", f"{reg}/{repo_name}-docker:v1", "-o", "json").ok().json()
    assert result["images"][0]["destination"] == f"{reg}/{repo_name}-docker:v1"
    manifest = manifest_of(dockyard_server, f"{repo_name}-docker", "v1")
    config = config_of(dockyard_server, f"{repo_name}-docker", manifest)
    assert config == image.blobs[0].data
    assert [layer["digest"] for layer in manifest["layers"]] == image_diff_ids(image)
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    for layer, original in zip(manifest["layers"], image.blobs[1:], strict=True):
        assert layer_of(dockyard_server, f"{repo_name}-docker", layer["digest"]) == gzip.decompress(original.data)
    # The image is named in the archive by its RepoTags; the tag part names it at the destination.
    named = cli("copy", f"docker-archive:{docker_file}:example.com/app:v1", f"{reg}/{repo_name}-named",
                "-o", "json").ok().json()
    assert named["images"][0]["destination"] == f"{reg}/{repo_name}-named:v1"
    assert "not in the docker-archive" in cli("copy", f"docker-archive:{docker_file}:example.com/app:v2",
                                              f"{reg}/{repo_name}-named").failed(1).stderr

    # From an index, skopeo writes the image of one platform.
    arm = {str(c.platform): c for c in index.children}["linux/arm64"]
    multi_file = tmp_path / "multi.docker.tar"
    skopeo.copy(f"docker://{reg}/{repo_name}:multi", f"docker-archive:{multi_file}:example.com/app:arm",
                "--override-arch", "arm64")
    cli("copy", f"docker-archive:{multi_file}", f"{reg}/{repo_name}-docker:arm").ok()
    manifest = manifest_of(dockyard_server, f"{repo_name}-docker", "arm")
    assert [layer["digest"] for layer in manifest["layers"]] == image_diff_ids(arm)

    # oci-archive: manifests and blobs travel as they are, so every digest is kept.
    oci_file = tmp_path / "multi.oci.tar"
    skopeo.copy(f"docker://{reg}/{repo_name}:multi", f"oci-archive:{oci_file}:multi", "--all",
                "--preserve-digests")
    result = cli("copy", f"oci-archive:{oci_file}:multi", f"{reg}/{repo_name}-oci:multi", "-o", "json").ok().json()
    assert result["images"][0]["digest"] == index.digest
    assert result["blobs_copied"] == len(index.all_blobs())
    # The only image of the archive is the default.
    again = cli("copy", f"oci-archive:{oci_file}", f"{reg}/{repo_name}-oci2:x", "-o", "json").ok().json()
    assert again["images"][0]["digest"] == index.digest
    cli("copy", f"oci-archive:{oci_file}", f"{reg}/{repo_name}-oci3", "--all-tags").ok()
    assert repo_tags(cli, reg, f"{repo_name}-oci3") == {"multi"}


def test_skopeo_reads_what_dockyard_writes(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    reg = dockyard_server.host
    skopeo = Skopeo(tmp_path / "skopeo")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=repo_name, layers=2, layer_size=30_000)
    push(index, dockyard_server.url, repo_name, "v1")
    arm = {str(c.platform): c for c in index.children}["linux/arm64"]

    # docker-archive from an index: one platform, chosen with --platform; layers decompressed, named by diff_id.
    docker_file = tmp_path / "arm.docker.tar"
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{docker_file}:demo/app:arm", "--platform",
        "linux/arm64").ok()
    with tarfile.open(docker_file) as tar:
        listing = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert listing == [{
        "Config": f"{arm.blobs[0].digest.split(':')[1]}.json",
        "RepoTags": ["demo/app:arm"],
        "Layers": [f"{d.split(':')[1]}.tar" for d in image_diff_ids(arm)],
    }]
    inspected = skopeo.inspect(f"docker-archive:{docker_file}")
    assert inspected["Architecture"] == "arm64"
    assert inspected["Layers"] == image_diff_ids(arm)
    skopeo.copy(f"docker-archive:{docker_file}", f"docker://{reg}/{repo_name}-skopeo-docker:arm")
    manifest = manifest_of(dockyard_server, f"{repo_name}-skopeo-docker", "arm")
    assert manifest["config"]["digest"] == arm.blobs[0].digest
    config = config_of(dockyard_server, f"{repo_name}-skopeo-docker", manifest)
    assert diff_ids(config) == image_diff_ids(arm)

    # An index cannot go to a docker-archive without a platform: one line, exit 2, no file.
    refused = cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{tmp_path / 'none.tar'}").failed(2)
    assert "--platform" in refused.stderr and "linux/arm64" in refused.stderr
    assert not (tmp_path / "none.tar").exists()
    # Without a name, the image is named as `docker pull` would have named it.
    default = tmp_path / "default.docker.tar"
    cli("copy", f"{reg}/{repo_name}@{arm.digest}", f"docker-archive:{default}").ok()
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{default}", "--platform", "linux/amd64").ok()
    with tarfile.open(default) as tar:
        listing = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert listing[0]["RepoTags"] == [f"{reg}/{repo_name}:v1"]

    # oci-archive: the whole index, digests kept; skopeo copies it back byte for byte.
    oci_file = tmp_path / "multi.oci.tar"
    cli("copy", f"{reg}/{repo_name}:v1", f"oci-archive:{oci_file}:v1").ok()
    assert skopeo.inspect(f"oci-archive:{oci_file}:v1", "--raw") == index.json
    skopeo.copy(f"oci-archive:{oci_file}:v1", f"docker://{reg}/{repo_name}-skopeo-oci:v1", "--all",
                "--preserve-digests")
    assert raw_manifest(dockyard_server, f"{repo_name}-skopeo-oci", "v1") == index.body

    # And dockyard reads its own archives back.
    back = cli("copy", f"oci-archive:{oci_file}:v1", f"{reg}/{repo_name}-back:v1", "-o", "json").ok().json()
    assert back["images"][0]["digest"] == index.digest
    cli("copy", f"docker-archive:{docker_file}:demo/app:arm", f"{reg}/{repo_name}-back:arm").ok()
    manifest = manifest_of(dockyard_server, f"{repo_name}-back", "arm")
    assert [layer["digest"] for layer in manifest["layers"]] == image_diff_ids(arm)


# -- archives built in the test -------------------------------------------------------------------------------------


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE,
        link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def docker_save_archive(path: Path, image: Content, *, repo_tag: str = "demo/app:v1") -> None:
    """An archive laid out as docker 25 writes it: blobs/sha256/… members, the gzip layers kept compressed, and a
    second name for the first layer through a symlink (as ``docker save`` links repeated layers)."""
    config, *layers = image.blobs
    with tarfile.open(path, "w") as tar:
        add(tar, "blobs/sha256/", kind=tarfile.DIRTYPE)
        for blob in image.blobs:
            add(tar, f"blobs/sha256/{blob.digest.split(':')[1]}", blob.data)
        add(tar, "legacy/layer.tar", kind=tarfile.SYMTYPE, link=f"../blobs/sha256/{layers[0].digest.split(':')[1]}")
        names = ["legacy/layer.tar", *[f"blobs/sha256/{b.digest.split(':')[1]}" for b in layers[1:]]]
        add(tar, "manifest.json", json.dumps([{"Config": f"blobs/sha256/{config.digest.split(':')[1]}",
                                                "RepoTags": [repo_tag], "Layers": names}]).encode())


def test_docker_save_layout_with_compressed_layers(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    reg = dockyard_server.host
    image = make_image(seed=repo_name, layers=2, docker=True)
    archive = tmp_path / "saved.tar"
    docker_save_archive(archive, image)
    cli("copy", f"docker-archive:{archive}:demo/app:v1", f"{reg}/{repo_name}:v1").ok()
    manifest = manifest_of(dockyard_server, repo_name, "v1")
    # Compressed layers stay compressed: same digests as the original image.
    assert [layer["digest"] for layer in manifest["layers"]] == [b.digest for b in image.blobs[1:]]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    assert manifest["config"]["digest"] == image.blobs[0].digest
    # And on to a docker-archive of the classic shape, which skopeo reads.
    out = tmp_path / "classic.tar"
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{out}:demo/app:v1").ok()
    assert Skopeo(tmp_path / "skopeo").inspect(f"docker-archive:{out}")["Layers"] == image_diff_ids(image)

    # A compressed layer whose content does not match the config's diff_id is refused.
    bad = make_image(seed=f"{repo_name}-bad", layers=2, docker=True)
    config = json.loads(bad.blobs[0].data)
    config["rootfs"]["diff_ids"][1] = compute_digest(b"something else")
    tampered = Content(bad.body, bad.media_type, (Blob(bad.blobs[0].media_type, json.dumps(config).encode()),
                                                  *bad.blobs[1:]))
    docker_save_archive(tmp_path / "bad.tar", tampered)
    failed = cli("copy", f"docker-archive:{tmp_path / 'bad.tar'}", f"oci-archive:{tmp_path / 'out.tar'}").failed(1)
    assert "diff_id" in failed.stderr
    assert not (tmp_path / "out.tar").exists()


def test_hostile_archive_refused_with_one_line_and_no_output(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    """The CLI's face of the hostile cases (each refusal is covered in tests/workflows/test_archive_limits.py)."""
    reg = dockyard_server.host
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    climbing = tmp_path / "climbing.tar"
    with tarfile.open(climbing, "w") as tar:
        add(tar, "../manifest.json", b"[]")
    linked = tmp_path / "linked.tar"
    with tarfile.open(linked, "w") as tar:
        add(tar, "manifest.json", kind=tarfile.SYMTYPE, link="../../etc/passwd")
    huge = tmp_path / "huge.tar"
    with tarfile.open(huge, "w") as tar:
        add(tar, "manifest.json", b"[" + b" " * (4 * 1024 * 1024) + b"]")
    for archive, destination, message in (
        (climbing, f"{reg}/{repo_name}:v1", "not a relative path"),
        (linked, f"docker-archive:{out_dir / 'x.tar'}", "outside the archive"),
        (huge, f"oci-archive:{out_dir / 'y.tar'}", "the limit is"),
    ):
        failed = cli("copy", f"docker-archive:{archive}", destination).failed(1)
        assert message in failed.stderr, failed.stderr
    assert leftovers(out_dir) == []

    # A truncated archive.
    whole = tmp_path / "whole.tar"
    docker_save_archive(whole, make_image(seed=repo_name, layers=1))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(whole.read_bytes()[:1500])
    assert "end of data" in cli("copy", f"docker-archive:{truncated}", f"{reg}/{repo_name}:v1").failed(1).stderr


def test_digest_mismatch_leaves_nothing(cli: Cli, dockyard_server: DockyardServer, repo_name: str,
                                        tmp_path: Path) -> None:
    reg = dockyard_server.host
    image = make_image(seed=repo_name, layers=2, layer_size=20_000)
    push(image, dockyard_server.url, repo_name, "v1")
    good = tmp_path / "good.tar"
    cli("copy", f"{reg}/{repo_name}:v1", f"oci-archive:{good}:v1").ok()
    # Flip one byte of the last layer inside the archive.
    layer = image.blobs[-1]
    raw = bytearray(good.read_bytes())
    at = raw.find(layer.data)
    assert at > 0
    raw[at + len(layer.data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(raw))

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = out_dir / "previous.tar"
    previous.write_bytes(b"an older archive")
    for destination in (f"oci-archive:{previous}:v1", f"docker-archive:{out_dir / 'new.tar'}"):
        failed = cli("copy", f"oci-archive:{bad}:v1", destination).failed(1)
        assert failed.stderr.startswith("dockyard: error: digest mismatch"), failed.stderr
    assert leftovers(out_dir) == ["previous.tar"]
    assert previous.read_bytes() == b"an older archive"
    failed = cli("copy", f"oci-archive:{bad}:v1", f"{reg}/{repo_name}-bad:v1").failed(1)
    assert "digest mismatch" in failed.stderr
    assert httpx.get(f"{dockyard_server.url}/v2/{repo_name}-bad/manifests/v1").status_code == 404

    # An uncompressed docker-archive layer is checked against its diff_id as it streams.
    docker_file = tmp_path / "image.docker.tar"
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{docker_file}:demo/app:v1").ok()
    raw = bytearray(docker_file.read_bytes())
    payload = gzip.decompress(layer.data)
    at = raw.find(payload)
    assert at > 0
    raw[at + 600] ^= 0xFF
    docker_file.write_bytes(bytes(raw))
    failed = cli("copy", f"docker-archive:{docker_file}", f"oci-archive:{out_dir / 'z.tar'}").failed(1)
    assert "digest mismatch" in failed.stderr
    assert leftovers(out_dir) == ["previous.tar"]


def test_archive_usage_errors(cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path) -> None:
    reg = dockyard_server.host
    push(make_image(seed=repo_name, layers=1), dockyard_server.url, repo_name, "v1")
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{tmp_path / 'a.tar'}", "--referrers").failed(2)
    cli("copy", f"{reg}/{repo_name}", f"docker-archive:{tmp_path / 'a.tar'}", "--all-tags").failed(2)
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{tmp_path / 'a.tar'}:Bad Name").failed(2)
    cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{tmp_path / 'a.tar'}:@0").failed(2)
    assert "not a regular file" in cli("copy", f"docker-archive:{tmp_path / 'missing.tar'}",
                                       f"{reg}/{repo_name}:v2").failed(1).stderr
    not_tar = tmp_path / "not.tar"
    not_tar.write_bytes(b"hello" * 200)
    assert "not a readable tar" in cli("copy", f"oci-archive:{not_tar}", f"{reg}/{repo_name}:v2").failed(1).stderr
    assert not (tmp_path / "a.tar").exists()


def test_podman_loads_what_dockyard_writes_and_saves_what_dockyard_reads(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    """`podman load` (what `docker load` does) takes dockyard's docker-archive; what `podman save` writes in both
    formats, dockyard copies into the registry with the same layers."""
    program = require_program("podman", "podman")
    env = {**subprocess_env(), "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    runroot = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))  # podman wants a runroot under 50 characters

    def podman(*args: str) -> str:
        proc = subprocess.run(
            [program, "--root", str(tmp_path / "root"), "--runroot", str(runroot), "--storage-driver", "vfs",
             *args], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    try:
        reg = dockyard_server.host
        image = make_image(seed=repo_name, layers=2)
        push(image, dockyard_server.url, repo_name, "v1")
        written = tmp_path / "dockyard.tar"
        cli("copy", f"{reg}/{repo_name}:v1", f"docker-archive:{written}:example.com/app:v1").ok()
        assert "example.com/app:v1" in podman("load", "-i", str(written))
        for kind in ("docker-archive", "oci-archive"):
            saved = tmp_path / f"podman.{kind}.tar"
            podman("save", "--format", kind, "-o", str(saved), "example.com/app:v1")
            cli("copy", f"{kind}:{saved}", f"{reg}/{repo_name}-{kind}:v1").ok()
            manifest = manifest_of(dockyard_server, f"{repo_name}-{kind}", "v1")
            config = config_of(dockyard_server, f"{repo_name}-{kind}", manifest)
            assert diff_ids(config) == image_diff_ids(image)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)
