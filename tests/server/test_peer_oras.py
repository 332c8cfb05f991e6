"""oras-py (``oras.client.OrasClient``) pushes and pulls file artifacts to and from ``dockyard serve``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.support.images import TITLE_ANNOTATION, make_image, push, random_bytes
from tests.support.peers import require_module

pytestmark = pytest.mark.peer("oras")

CONFIG_TYPE = "application/vnd.dockyard.test.config.v1+json"
FILE_TYPE = "application/vnd.dockyard.test.file.v1"


@pytest.fixture
def oras_client(dockyard_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An OrasClient over plain HTTP; cwd is a scratch dir (oras-py wants relative paths) and no docker config."""
    require_module("oras", "oras")
    import oras.client

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return oras.client.OrasClient(hostname=dockyard_server.host, insecure=True)


def _manifest(server, repo: str, ref: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    response = httpx.get(f"{server.url}/v2/{repo}/manifests/{ref}", headers={"Accept": mt.MANIFEST_ACCEPT})
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_push_and_pull_file_artifact(dockyard_server, oras_client, tmp_path: Path, chunked: bool) -> None:  # type: ignore[no-untyped-def]
    repo = unique("oras/files")
    target = f"{dockyard_server.host}/{repo}:v1"
    readme, payload = b"# hello from oras\n", random_bytes(3 * 1024 * 1024 + 5, seed=repo)
    Path("README.md").write_bytes(readme)
    Path("payload.bin").write_bytes(payload)
    Path("config.json").write_bytes(b'{"purpose":"test"}')

    response = oras_client.push(
        target,
        files=[f"README.md:{FILE_TYPE}", "payload.bin"],
        manifest_config=f"config.json:{CONFIG_TYPE}",
        manifest_annotations={"org.opencontainers.image.description": "a test artifact"},
        do_chunked=chunked,
        chunk_size=1024 * 1024,
        quiet=True,
    )
    assert response.status_code == 201

    got = _manifest(dockyard_server, repo, "v1")
    manifest = got.json()
    assert got.headers["Docker-Content-Digest"] == compute_digest(got.content)
    assert manifest["mediaType"] == mt.OCI_MANIFEST
    assert manifest["config"] == {
        "mediaType": CONFIG_TYPE,
        "size": 18,
        "digest": compute_digest(b'{"purpose":"test"}'),
    }
    assert manifest["annotations"] == {"org.opencontainers.image.description": "a test artifact"}
    layers = {layer["annotations"][TITLE_ANNOTATION]: layer for layer in manifest["layers"]}
    assert layers["README.md"]["mediaType"] == FILE_TYPE
    assert layers["README.md"]["digest"] == compute_digest(readme)
    assert layers["payload.bin"]["digest"] == compute_digest(payload)
    assert layers["payload.bin"]["size"] == len(payload)

    outdir = tmp_path / "pulled"
    files = oras_client.pull(target=target, outdir=str(outdir))
    assert sorted(Path(f).name for f in files) == ["README.md", "payload.bin"]
    assert (outdir / "README.md").read_bytes() == readme
    assert (outdir / "payload.bin").read_bytes() == payload

    assert oras_client.get_manifest(target) == manifest
    assert oras_client.get_tags(f"{dockyard_server.host}/{repo}") == ["v1"]


def test_directory_artifact_and_tags(dockyard_server, oras_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = unique("oras/dir")
    folder = Path("bundle")
    (folder / "nested").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"A")
    (folder / "nested" / "b.txt").write_bytes(b"B" * 1000)
    for tag in ("one", "two", "three"):
        (folder / "tag.txt").write_text(tag)  # a distinct manifest per tag
        oras_client.push(f"{dockyard_server.host}/{repo}:{tag}", files=["bundle"], quiet=True)
    assert sorted(oras_client.get_tags(f"{dockyard_server.host}/{repo}")) == ["one", "three", "two"]
    assert oras_client.get_tags(f"{dockyard_server.host}/{repo}", N=2) == sorted(["one", "three", "two"])[:2]

    outdir = tmp_path / "pulled"
    oras_client.pull(target=f"{dockyard_server.host}/{repo}:two", outdir=str(outdir))
    assert (outdir / "bundle" / "a.txt").read_bytes() == b"A"
    assert (outdir / "bundle" / "nested" / "b.txt").read_bytes() == b"B" * 1000

    manifest = _manifest(dockyard_server, repo, "two").json()
    assert manifest["layers"][0]["mediaType"] == mt.OCI_LAYER_GZIP
    assert manifest["layers"][0]["annotations"][TITLE_ANNOTATION] == "bundle"
    assert manifest["config"]["mediaType"] == "application/vnd.unknown.config.v1+json"

    # oras-py deletes the manifest the tag names (by digest), which removes exactly that tag here
    assert oras_client.delete_tag(f"{dockyard_server.host}/{repo}", "one") is True
    assert sorted(oras_client.get_tags(f"{dockyard_server.host}/{repo}")) == ["three", "two"]


def test_artifact_with_subject_is_a_referrer(dockyard_server, oras_client) -> None:  # type: ignore[no-untyped-def]
    import oras.oci

    repo = unique("oras/referrer")
    image = make_image(seed=repo, layer_size=100)
    push(image, dockyard_server.url, repo, tag="app")
    Path("sbom.json").write_bytes(b'{"packages":[]}')
    Path("config.json").write_bytes(b"{}")
    subject = oras.oci.Subject(mediaType=image.media_type, digest=image.digest, size=image.size)
    response = oras_client.push(
        f"{dockyard_server.host}/{repo}:sbom",
        files=["sbom.json:application/spdx+json"],
        manifest_config=f"config.json:{CONFIG_TYPE}",
        subject=subject,
        quiet=True,
    )
    assert response.status_code == 201
    assert response.headers.get("OCI-Subject") == image.digest

    sbom = _manifest(dockyard_server, repo, "sbom")
    assert json.loads(sbom.content)["subject"] == {"mediaType": image.media_type, "digest": image.digest,
                                                   "size": image.size}
    referrers = httpx.get(f"{dockyard_server.url}/v2/{repo}/referrers/{image.digest}")
    assert referrers.status_code == 200
    index = referrers.json()
    assert index["mediaType"] == mt.OCI_INDEX
    assert [(m["digest"], m.get("artifactType")) for m in index["manifests"]] == [
        (sbom.headers["Docker-Content-Digest"], CONFIG_TYPE)
    ]
