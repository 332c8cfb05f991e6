"""``dockyard push`` / ``dockyard pull``: ORAS-compatible artifacts, checked against oras-py both ways."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import TEST_USER
from tests.support.images import make_artifact, make_image, make_multiarch_index, push
from tests.support.peers import require_module
from tests.support.servers import DistributionServer, DockyardServer

TITLE = "org.opencontainers.image.title"


def make_tree(root: Path) -> dict[str, bytes]:
    """A file and a directory with nested content; returns relative path -> bytes of every file."""
    files = {
        "notes.txt": b"release notes\n",
        "model/weights.bin": os.urandom(300_000),
        "model/config/params.json": b'{"layers": 3}',
        "model/empty.txt": b"",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(params=["dockyard", "distribution"])
def registry(request: pytest.FixtureRequest) -> DockyardServer | DistributionServer:
    name = "dockyard_server" if request.param == "dockyard" else "distribution_server"
    return request.getfixturevalue(name)


def test_push_and_pull_round_trip(
    cli: Cli, registry: DockyardServer | DistributionServer, repo_name: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    reg = registry.host
    pushed = cli("push", "-r", reg, f"{repo_name}:v1", "notes.txt", "model", "--artifact-type",
                 "application/vnd.example.model", "--annotation", "org.example.k=v", "-a", "x=y=z", "-o", "json",
                 cwd=src).ok().json()
    manifest = json.loads(cli("manifest", "get", "-r", reg, f"{repo_name}:v1").ok().stdout)
    assert pushed["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["mediaType"] for layer in pushed["layers"]] == [layer["mediaType"] for layer in manifest["layers"]]
    assert pushed["digest"] == cli("tag", "show", "-r", reg, f"{repo_name}:v1", "-o", "json").ok().json()["digest"]
    assert manifest["artifactType"] == "application/vnd.example.model"
    assert manifest["annotations"] == {"org.example.k": "v", "x": "y=z"}
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    layers = {layer["annotations"][TITLE]: layer for layer in manifest["layers"]}
    assert set(layers) == {"notes.txt", "model"}
    assert layers["model"]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layers["model"]["annotations"]["io.deis.oras.content.unpack"] == "true"
    assert layers["notes.txt"]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"

    out = tmp_path / "out"
    pulled = cli("pull", "-r", reg, f"{repo_name}:v1", "--dir", str(out), "-o", "json").ok().json()
    assert pulled["digest"] == pushed["digest"]
    assert read_tree(out) == files
    # Pushing the same content again uploads nothing new and gives the same digest.
    again = cli("push", "-r", reg, f"{repo_name}:v2", "notes.txt", "model", "--artifact-type",
                "application/vnd.example.model", "--annotation", "org.example.k=v", "-a", "x=y=z", "-o", "json",
                cwd=src).ok().json()
    assert again["digest"] == pushed["digest"]
    # A media type after the path, as ORAS writes it; the tag defaults to latest.
    cli("push", "-r", reg, repo_name, "notes.txt:text/plain", cwd=src).ok()
    latest = json.loads(cli("manifest", "get", "-r", reg, f"{repo_name}:latest").ok().stdout)
    assert latest["layers"][0]["mediaType"] == "text/plain"
    assert latest["artifactType"] == "application/vnd.unknown.artifact.v1"


def test_subject_makes_a_referrer(cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path) -> None:
    reg = dockyard_server.host
    image = make_image(seed=repo_name)
    push(image, dockyard_server.url, repo_name, "v1")
    (tmp_path / "sig.json").write_text('{"signed": true}')
    sig = cli("push", "-r", reg, f"{repo_name}:v1-sig", "sig.json", "--subject", "v1", "--artifact-type",
              "application/vnd.example.sig", "-o", "json").ok().json()
    manifest = json.loads(cli("manifest", "get", "-r", reg, f"{repo_name}:v1-sig").ok().stdout)
    assert manifest["subject"] == {"mediaType": image.media_type, "digest": image.digest, "size": image.size}
    found = cli("manifest", "referrers", "-r", reg, f"{repo_name}:v1", "-o", "json").ok().json()
    assert [r["digest"] for r in found] == [sig["digest"]]
    by_digest = cli("push", "-r", reg, f"{repo_name}:v1-sig2", "sig.json", "--subject", image.digest, "-o", "json")
    assert by_digest.ok().json()["digest"] != sig["digest"]  # no artifactType given: a different manifest


def test_errors(cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path) -> None:
    reg = dockyard_server.host
    (tmp_path / "f.txt").write_text("x")
    cli("push", "-r", reg, f"{repo_name}:v1", "missing.txt").failed(2)
    cli("push", "-r", reg, f"{repo_name}@sha256:{'a' * 64}", "f.txt").failed(2)
    cli("push", "-r", reg, f"{repo_name}:v1", "f.txt", "--annotation", "novalue").failed(2)
    cli("push", "-r", reg, f"{repo_name}:v1", "f.txt", "--subject", "no-such-tag").failed(1)
    cli("pull", "-r", reg, f"{repo_name}:nope").failed(1)
    cli("push", "-r", reg, f"{repo_name}:v1", "f.txt", "f.txt").failed(2)  # duplicate names

    index = make_multiarch_index(seed=repo_name, layers=1, layer_size=64)
    push(index, dockyard_server.url, repo_name, "multi")
    assert "index" in cli("pull", "-r", reg, f"{repo_name}:multi", "--dir", str(tmp_path / "o1")).failed().stderr

    evil = make_artifact({"../escaped.txt": b"x"})
    push(evil, dockyard_server.url, repo_name, "evil")
    out = tmp_path / "deep" / "out"
    assert "refusing" in cli("pull", "-r", reg, f"{repo_name}:evil", "--dir", str(out)).failed().stderr
    assert not (tmp_path / "deep" / "escaped.txt").exists()


def test_push_and_pull_with_credentials(
    cli: Cli, dockyard_auth_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    reg = dockyard_auth_server.host
    (tmp_path / "f.txt").write_text("secret")
    cli("push", "-r", reg, f"{repo_name}:v1", "f.txt").failed(1)
    login = ("-u", TEST_USER[0], "--password-stdin")
    cli("push", "-r", reg, f"{repo_name}:v1", "f.txt", *login, input=TEST_USER[1]).ok()
    cli("pull", "-r", reg, f"{repo_name}:v1", "--dir", "out", *login, input=TEST_USER[1]).ok()
    assert (tmp_path / "out" / "f.txt").read_text() == "secret"


def test_oras_pulls_what_dockyard_pushed(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    require_module("oras", "oras")
    import oras.client

    src = tmp_path / "src"
    files = make_tree(src)
    reg = dockyard_server.host
    cli("push", "-r", reg, f"{repo_name}:v1", "notes.txt", "model", cwd=src).ok()
    out = tmp_path / "oras-out"
    client = oras.client.OrasClient(hostname=reg, insecure=True)
    client.pull(target=f"{reg}/{repo_name}:v1", outdir=str(out))
    assert read_tree(out) == files


def test_dockyard_pulls_what_oras_pushed(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_module("oras", "oras")
    import oras.client

    src = tmp_path / "src"
    files = make_tree(src)
    reg = dockyard_server.host
    monkeypatch.chdir(src)
    client = oras.client.OrasClient(hostname=reg, insecure=True)
    client.push(target=f"{reg}/{repo_name}:v1", files=["notes.txt", "model"],
                manifest_annotations={"org.example": "from-oras"})
    out = tmp_path / "out"
    cli("pull", "-r", reg, f"{repo_name}:v1", "--dir", str(out)).ok()
    assert read_tree(out) == files
