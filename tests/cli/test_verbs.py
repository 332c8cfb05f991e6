"""The everyday verbs (image inspect, digest, config, tag add, index create/append, manifest put, blob
get/put/delete) against ``dockyard serve`` and CNCF distribution (Debian's docker-registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import compute_digest
from tests.cli.conftest import Cli
from tests.support.images import DEFAULT_CREATED, Content, make_image, make_multiarch_index, push
from tests.support.proxy import FaultProxy

RUNTIME = {
    "Entrypoint": ["/bin/app"],
    "Cmd": ["--serve", "8080"],
    "Env": ["PATH=/bin", "MODE=prod"],
    "Labels": {"org.opencontainers.image.title": "app", "team": "core"},
    "WorkingDir": "/srv",
    "User": "1000:1000",
}


@pytest.fixture(params=["dockyard", "distribution"])
def registry(request: pytest.FixtureRequest) -> Any:
    """Each verb runs against both registries."""
    return request.getfixturevalue("dockyard_server" if request.param == "dockyard" else "distribution_server")


def image(arch: str, seed: str, *, layers: int = 2, variant: str | None = None) -> Content:
    return make_image(architecture=arch, variant=variant, seed=seed, layers=layers, layer_size=3000, runtime=RUNTIME)


def manifest_json(cli: Cli, host: str, ref: str) -> dict[str, Any]:
    return json.loads(cli("manifest", "get", "-r", host, ref).ok().stdout)


# -- image inspect, digest, config ----------------------------------------------------------------------------------


def test_inspect_image_and_index(cli: Cli, registry: Any, repo_name: str, tmp_path: Path) -> None:
    host = registry.host
    index = make_multiarch_index(("linux/amd64", "linux/arm/v7"), seed=repo_name, layers=2, layer_size=3000)
    push(index, registry.url, repo_name, "multi")
    single = image("arm64", repo_name)
    push(single, registry.url, repo_name, "single")
    (tmp_path / "sig.json").write_text("{}")
    cli("push", "-r", host, f"{repo_name}:sig", "sig.json", "--subject", "single", "-q").ok()

    data = cli("image", "inspect", "-r", host, f"{repo_name}:single", "-o", "json").ok().json()
    assert data["reference"] == f"{repo_name}:single"
    assert data["digest"] == single.digest and data["media_type"] == mt.OCI_MANIFEST and not data["is_index"]
    assert data["referrers"] == 1 and data["subject"] is None
    [img] = data["images"]
    assert img["platform"] == "linux/arm64" and img["os"] == "linux" and img["architecture"] == "arm64"
    assert img["created"] == DEFAULT_CREATED
    config_blob = single.blobs[0]
    assert img["config"] == {
        "digest": config_blob.digest, "media_type": mt.OCI_CONFIG, "size": config_blob.size,
        "entrypoint": ["/bin/app"], "cmd": ["--serve", "8080"], "env": ["PATH=/bin", "MODE=prod"],
        "labels": {"org.opencontainers.image.title": "app", "team": "core"}, "working_dir": "/srv",
        "user": "1000:1000",
    }
    assert img["layers"] == [{"digest": b.digest, "media_type": mt.OCI_LAYER_GZIP, "size": b.size}
                             for b in single.blobs[1:]]
    layers_size = sum(b.size for b in single.blobs[1:])
    assert img["layers_size"] == layers_size and img["manifest_size"] == single.size
    assert img["total_size"] == data["total_size"] == single.size + config_blob.size + layers_size

    table = cli("image", "inspect", "-r", host, f"{repo_name}:single").ok().stdout
    for text in ("linux/arm64", "/bin/app", "--serve 8080", "MODE=prod", "team=core", "/srv", "1000:1000",
                 single.blobs[1].digest, mt.OCI_LAYER_GZIP, "Referrers"):
        assert text in table, (text, table)

    artifact = cli("image", "inspect", "-r", host, f"{repo_name}:sig", "-o", "json").ok().json()
    assert artifact["subject"] == single.digest and artifact["artifact_type"] == "application/vnd.unknown.artifact.v1"
    [item] = artifact["images"]
    assert item["platform"] is None and item["created"] is None
    assert item["config"]["entrypoint"] is None and item["config"]["env"] == [] and item["config"]["labels"] == {}

    data = cli("image", "inspect", "-r", host, f"{repo_name}:multi", "-o", "json").ok().json()
    assert data["is_index"] and data["media_type"] == mt.OCI_INDEX and data["referrers"] == 0
    assert [(i["digest"], i["platform"]) for i in data["images"]] == [
        (c.digest, str(c.platform)) for c in index.children
    ]
    everything = {index.digest: index.size, **{c.digest: c.size for c in index.children},
                  **{b.digest: b.size for b in index.all_blobs()}}
    assert data["total_size"] == sum(everything.values())
    table = cli("image", "inspect", "-r", host, f"{repo_name}:multi").ok().stdout
    rows = [line for line in table.splitlines() if line.startswith("linux/")]
    assert [row.split()[:2] for row in rows] == [[str(c.platform), c.digest] for c in index.children]

    arm = cli("image", "inspect", "-r", host, f"{repo_name}:multi", "--platform", "linux/arm", "-o", "json").ok()
    assert [i["digest"] for i in arm.json()["images"]] == [index.children[1].digest]
    assert "linux/arm/v7" in cli("image", "inspect", "-r", host, f"{repo_name}:multi", "--platform",
                                 "linux/arm").ok().stdout

    assert "has no manifest for windows/amd64" in cli("image", "inspect", "-r", host, f"{repo_name}:multi",
                                                      "--platform", "windows/amd64").failed(2).stderr
    assert "not found" in cli("image", "inspect", "-r", host, f"{repo_name}:missing").failed(1).stderr


def test_digest_and_config(cli: Cli, registry: Any, repo_name: str) -> None:
    host = registry.host
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=repo_name, layers=1)
    push(index, registry.url, repo_name, "v1")
    amd64, arm64 = index.children

    assert cli("digest", "-r", host, f"{repo_name}:v1").ok().stdout == index.digest + "\n"
    assert cli("digest", "-r", host, f"{repo_name}:v1", "-o", "json").ok().json() == {
        "reference": f"{repo_name}:v1", "digest": index.digest}
    assert cli("digest", "-r", host, f"{repo_name}:v1", "--platform", "linux/arm64").ok().stdout.strip() == \
        arm64.digest
    assert cli("digest", "-r", host, f"{repo_name}@{amd64.digest}").ok().stdout.strip() == amd64.digest
    assert "not found" in cli("digest", "-r", host, f"{repo_name}:nope").failed(1).stderr

    config = cli("config", "-r", host, f"{repo_name}:v1", "--platform", "linux/amd64").ok().stdout.encode()
    assert config == amd64.blobs[0].data and compute_digest(config) == amd64.blobs[0].digest
    direct = cli("config", "-r", host, f"{host}/{repo_name}@{arm64.digest}").ok().stdout.encode()
    assert direct == arm64.blobs[0].data
    error = cli("config", "-r", host, f"{repo_name}:v1").failed(2).stderr
    assert "index of 2 manifests (linux/amd64, linux/arm64)" in error and "--platform" in error
    cli("config", "-r", host, f"{repo_name}:nope").failed(1)


# -- tag add ----------------------------------------------------------------------------------------------------------


def test_tag_add(cli: Cli, registry: Any, repo_name: str) -> None:
    host = registry.host
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=repo_name, layers=1)
    push(index, registry.url, repo_name, "v1")

    same = cli("tag", "add", "-r", host, f"{repo_name}:v1", "latest", "stable", "-o", "json").ok().json()
    assert same == {"source": f"{repo_name}:v1", "digest": index.digest, "media_type": mt.OCI_INDEX,
                    "tags": [f"{repo_name}:latest", f"{repo_name}:stable"], "blobs_mounted": 0, "blobs_copied": 0}
    for tag in ("latest", "stable"):
        assert cli("manifest", "get", "-r", host, f"{repo_name}:{tag}").ok().stdout.encode() == index.body

    other = f"{repo_name}-other"
    moved = cli("tag", "add", "-r", host, f"{host}/{repo_name}@{index.digest}", f"{host}/{other}:v2", "-o",
                "json").ok().json()
    assert moved["tags"] == [f"{other}:v2"] and moved["digest"] == index.digest
    assert moved["blobs_mounted"] == len(index.all_blobs()) and moved["blobs_copied"] == 0
    assert cli("manifest", "get", "-r", host, f"{other}:v2").ok().stdout.encode() == index.body
    child = index.children[0]
    assert cli("manifest", "get", "-r", host, f"{other}@{child.digest}").ok().stdout.encode() == child.body

    assert "not found" in cli("tag", "add", "-r", host, f"{repo_name}:missing", "x").failed(1).stderr


# -- index create / append ----------------------------------------------------------------------------------------


def test_index_create_and_append(cli: Cli, registry: Any, repo_name: str) -> None:
    host = registry.host
    amd64 = image("amd64", repo_name, layers=1)
    arm7 = image("arm", repo_name, layers=1, variant="v7")
    elsewhere = f"{repo_name}-src"
    push(amd64, registry.url, repo_name, "amd64")
    push(arm7, registry.url, elsewhere, "arm")

    created = cli("index", "create", "-r", host, f"{repo_name}:v1", f"{repo_name}:amd64", f"{elsewhere}:arm",
                  "--annotation", "org.example.release=1", "-o", "json").ok().json()
    assert created["reference"] == f"{repo_name}:v1" and created["media_type"] == mt.OCI_INDEX
    assert created["manifests"] == [
        {"digest": amd64.digest, "media_type": mt.OCI_MANIFEST, "size": amd64.size, "platform": "linux/amd64"},
        {"digest": arm7.digest, "media_type": mt.OCI_MANIFEST, "size": arm7.size, "platform": "linux/arm/v7"},
    ]
    assert created["added"] == [amd64.digest, arm7.digest] and created["replaced"] == []
    assert created["blobs_mounted"] == 2 and created["previous_digest"] is None
    document = manifest_json(cli, host, f"{repo_name}:v1")
    assert document["mediaType"] == mt.OCI_INDEX and document["annotations"] == {"org.example.release": "1"}
    assert [m["platform"] for m in document["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm", "os": "linux", "variant": "v7"}]
    assert cli("digest", "-r", host, f"{repo_name}:v1").ok().stdout.strip() == created["digest"]
    # The child from the other repository now lives in the index's repository too.
    assert cli("manifest", "get", "-r", host, f"{repo_name}@{arm7.digest}").ok().stdout.encode() == arm7.body

    # Append: a new platform is added, the same platform replaces, a listed manifest stays once.
    riscv = image("riscv64", repo_name, layers=1)
    amd64_new = image("amd64", f"{repo_name}-new", layers=1)
    push(riscv, registry.url, repo_name, "riscv")
    push(amd64_new, registry.url, repo_name, "amd64-new")
    appended = cli("index", "append", "-r", host, f"{repo_name}:v1", f"{repo_name}:riscv",
                   f"{repo_name}:amd64-new", f"{repo_name}@{arm7.digest}", "-o", "json").ok().json()
    assert appended["previous_digest"] == created["digest"]
    assert appended["added"] == [riscv.digest, amd64_new.digest] and appended["replaced"] == [amd64.digest]
    assert [(m["digest"], m["platform"]) for m in appended["manifests"]] == [
        (amd64_new.digest, "linux/amd64"), (arm7.digest, "linux/arm/v7"), (riscv.digest, "linux/riscv64")]
    document = manifest_json(cli, host, f"{repo_name}:v1")
    assert document["annotations"] == {"org.example.release": "1"}
    assert compute_digest(json.dumps(document, separators=(",", ":")).encode()) == appended["digest"]

    refused = cli("index", "append", "-r", host, f"{repo_name}:v1", f"{repo_name}:amd64", "--no-replace").failed(2)
    assert "two manifests for linux/amd64" in refused.stderr
    assert "not an index" in cli("index", "append", "-r", host, f"{repo_name}:riscv",
                                 f"{repo_name}:amd64").failed(2).stderr
    assert "two manifests for linux/amd64" in cli("index", "create", "-r", host, f"{repo_name}:bad",
                                                  f"{repo_name}:amd64", f"{repo_name}:amd64-new").failed(2).stderr
    assert "not found" in cli("index", "create", "-r", host, f"{repo_name}:bad", f"{repo_name}:nope").failed(1).stderr

    # A Docker manifest list lists only Docker manifests.
    docker_list = make_multiarch_index(("linux/amd64",), docker=True, seed=repo_name, layers=1)
    push(docker_list, registry.url, repo_name, "docker")
    assert "Docker manifest list" in cli("index", "append", "-r", host, f"{repo_name}:docker",
                                         f"{repo_name}:riscv").failed(2).stderr

    # An index as a source contributes its entries.
    combined = cli("index", "create", "-r", host, f"{repo_name}-all:v1", f"{repo_name}:v1", "-o", "json").ok()
    assert [m["digest"] for m in combined.json()["manifests"]] == [amd64_new.digest, arm7.digest, riscv.digest]


# -- manifest put ---------------------------------------------------------------------------------------------------


def test_manifest_put(cli: Cli, registry: Any, repo_name: str, tmp_path: Path) -> None:
    host = registry.host
    single = image("amd64", repo_name, layers=1)
    push(single, registry.url, repo_name, "v1")
    path = tmp_path / "manifest.json"
    path.write_bytes(single.body)

    assert cli("manifest", "put", "-r", host, f"{repo_name}:copy", str(path)).ok().stdout == single.digest + "\n"
    piped = cli("manifest", "put", "-r", host, f"{repo_name}:piped", "-", "-o", "json",
                input=single.body.decode()).ok().json()
    assert piped == {"reference": f"{repo_name}:piped", "digest": single.digest, "media_type": mt.OCI_MANIFEST,
                     "manifest_size": single.size}
    by_digest = cli("manifest", "put", "-r", host, f"{repo_name}@{single.digest}", str(path), "-o", "json").ok()
    assert by_digest.json()["reference"] == f"{repo_name}@{single.digest}"
    for tag in ("copy", "piped"):
        assert cli("manifest", "get", "-r", host, f"{repo_name}:{tag}").ok().stdout.encode() == single.body

    # Without mediaType in the document, --media-type says what it is.
    bare = json.loads(single.body)
    del bare["mediaType"]
    bare_path = tmp_path / "bare.json"
    bare_path.write_text(json.dumps(bare))
    pushed = cli("manifest", "put", "-r", host, f"{repo_name}:bare", str(bare_path), "--media-type",
                 mt.OCI_MANIFEST, "-o", "json").ok().json()
    assert pushed["media_type"] == mt.OCI_MANIFEST and pushed["digest"] == compute_digest(bare_path.read_bytes())
    # A manifest whose blobs the registry lacks is the registry's refusal (exit 1), in one line.
    missing = json.loads(single.body)
    missing["layers"][0]["digest"] = "sha256:" + "1" * 64
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    cli("manifest", "put", "-r", host, f"{repo_name}:x", str(tmp_path / "missing.json")).failed(1)


# -- blob get / put / delete ----------------------------------------------------------------------------------------


def test_blob_get_put_delete(cli: Cli, registry: Any, repo_name: str, tmp_path: Path) -> None:
    host = registry.host
    payload = bytes(range(256)) * 500
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    digest = compute_digest(payload)

    assert cli("blob", "put", "-r", host, repo_name, str(source)).ok().stdout == digest + "\n"
    text = b"from standard input\n"
    piped = cli("blob", "put", "-r", host, repo_name, "-", "-o", "json", input=text.decode()).ok().json()
    assert piped == {"repository": repo_name, "digest": compute_digest(text), "size": len(text)}

    target = tmp_path / "out.bin"
    got = cli("blob", "get", "-r", host, f"{repo_name}@{digest}", "-O", str(target), "-o", "json").ok().json()
    assert got == {"digest": digest, "size": len(payload), "path": str(target)}
    assert target.read_bytes() == payload
    assert cli("blob", "get", "-r", host, f"{host}/{repo_name}@{compute_digest(text)}").ok().stdout.encode() == text

    unknown = "sha256:" + "2" * 64
    assert "not found" in cli("blob", "get", "-r", host, f"{repo_name}@{unknown}", "-O",
                              str(tmp_path / "unknown.bin")).failed(1).stderr
    assert not (tmp_path / "unknown.bin").exists()

    deleted = cli("blob", "delete", "-r", host, f"{repo_name}@{digest}", "-o", "json").ok().json()
    assert deleted == {"deleted": f"{repo_name}@{digest}"}
    cli("blob", "get", "-r", host, f"{repo_name}@{digest}").failed(1)
    assert "not found" in cli("blob", "delete", "-r", host, f"{repo_name}@{digest}").failed(1).stderr


# -- bad input, refused before anything is sent ---------------------------------------------------------------------


def test_bad_input(cli: Cli, dockyard_server: Any, repo_name: str, tmp_path: Path) -> None:
    host = dockyard_server.host
    digest = "sha256:" + "0" * 64
    cli("image", "inspect", "-r", host, f"{repo_name}:v1", "--platform", "linux").failed(2)
    cli("digest", "-r", host, repo_name).failed(2)

    assert "another registry" in cli("tag", "add", "-r", host, f"{repo_name}:v1", "example.com/x:y").failed(2).stderr
    cli("tag", "add", "-r", host, f"{repo_name}:v1", "bad tag!").failed(2)
    cli("tag", "add", "-r", host, f"{repo_name}:v1", f"{repo_name}-other@{digest}").failed(2)
    cli("tag", "add", "-r", host, f"{repo_name}:v1").failed(2)

    cli("index", "create", "-r", host, f"{repo_name}@{digest}", f"{repo_name}:amd64").failed(2)
    assert "another registry" in cli("index", "create", "-r", host, f"{repo_name}:v2", "example.com/x:y"
                                     ).failed(2).stderr
    cli("index", "append", "-r", host, f"{repo_name}:v2").failed(2)

    single = image("amd64", repo_name, layers=1)
    path = tmp_path / "manifest.json"
    path.write_bytes(single.body)
    (tmp_path / "broken.json").write_text("{not json")
    assert "not valid JSON" in cli("manifest", "put", "-r", host, f"{repo_name}:x", str(tmp_path / "broken.json")
                                   ).failed(2).stderr
    (tmp_path / "shape.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}))
    assert "manifests" in cli("manifest", "put", "-r", host, f"{repo_name}:x", str(tmp_path / "shape.json")
                              ).failed(2).stderr
    assert "does not match" in cli("manifest", "put", "-r", host, f"{repo_name}:x", str(path), "--media-type",
                                   mt.DOCKER_MANIFEST).failed(2).stderr
    assert "no such file" in cli("manifest", "put", "-r", host, f"{repo_name}:x", str(tmp_path / "nope.json")
                                 ).failed(2).stderr
    assert "has digest" in cli("manifest", "put", "-r", host, f"{repo_name}@{digest}", str(path)).failed(2).stderr
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (mt.MAX_MANIFEST_SIZE + 1))
    assert "at most" in cli("manifest", "put", "-r", host, f"{repo_name}:x", str(huge)).failed(2).stderr

    cli("blob", "get", "-r", host, f"{repo_name}:v1").failed(2)
    cli("blob", "delete", "-r", host, repo_name).failed(2)
    assert "no such file" in cli("blob", "put", "-r", host, repo_name, str(tmp_path / "nope")).failed(2).stderr
    assert "not a file" in cli("blob", "put", "-r", host, repo_name, str(tmp_path)).failed(2).stderr


def test_blob_get_and_config_verify_what_they_read(cli: Cli, cli_env: dict[str, str], dockyard_server: Any,
                                                   repo_name: str, tmp_path: Path) -> None:
    """A registry (here a proxy) that corrupts blob bytes: no file is left, standard output gets an error after
    the bytes, and ``config`` refuses the config; every refusal is one line with exit status 1."""
    single = image("amd64", repo_name, layers=1)
    push(single, dockyard_server.url, repo_name, "v1")
    layer = single.blobs[1]
    with FaultProxy(dockyard_server.url) as proxy:
        host = proxy.host
        proxy.inject_corruption(path_contains="/blobs/")
        target = tmp_path / "layer.bin"
        error = cli("blob", "get", "-r", host, f"{repo_name}@{layer.digest}", "-O", str(target)).failed(1).stderr
        assert "digest mismatch" in error and not target.exists()
        streamed = subprocess.run([shutil.which("dockyard") or "dockyard", "blob", "get", "-r", host,
                                   f"{repo_name}@{layer.digest}"], capture_output=True, env=cli_env, timeout=120,
                                  stdin=subprocess.DEVNULL)
        assert streamed.returncode == 1 and len(streamed.stdout) == layer.size and streamed.stdout != layer.data
        assert streamed.stderr.decode().startswith("dockyard: error: digest mismatch")
        assert streamed.stderr.decode().count("\n") == 1
        assert "digest mismatch" in cli("config", "-r", host, f"{repo_name}:v1").failed(1).stderr
        assert "digest mismatch" in cli("image", "inspect", "-r", host, f"{repo_name}:v1").failed(1).stderr
