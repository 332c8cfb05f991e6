"""Every public method of the sync client against each backend, with the outcome each one must have.

On ``dockyard serve`` every method works. On CNCF distribution (no ``/acr/v1``) every method works too,
except the lock updates, which must raise :class:`UnsupportedOperationError`. The test prints the matrix.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard import (
    ArtifactManifestProperties,
    ArtifactTagProperties,
    ContainerRegistryClient,
    RepositoryProperties,
    UnsupportedOperationError,
)
from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.support.images import make_artifact, make_image

ACR_ONLY = {"update_repository_properties", "update_tag_properties", "update_manifest_properties"}


def _exercise(client: ContainerRegistryClient, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """One call per public method, in an order where each finds what the earlier ones made."""
    repo, other = unique("matrix"), unique("matrix-mount")
    image = make_image(layers=1, layer_size=4096)
    state: dict[str, Any] = {}

    sig = make_artifact({"sig.json": b"{}"}, artifact_type="application/vnd.test.sig", subject=image)

    def upload_blobs() -> None:
        for blob in (*image.blobs, *sig.blobs):
            digest, size = client.upload_blob(repo, io.BytesIO(blob.data))
            assert (digest, size) == (blob.digest, len(blob.data))

    def push_image() -> None:
        state["digest"] = client.set_manifest(repo, image.body, tag="v1", media_type=image.media_type)
        assert state["digest"] == compute_digest(image.body)

    def referrers() -> None:
        found = client.list_referrers(repo, state["digest"])
        assert [d.artifact_type for d in found] == ["application/vnd.test.sig"]

    layer = image.blobs[1]
    calls: dict[str, Callable[[], Any]] = {
        "upload_blob": upload_blobs,
        "set_manifest": push_image,
        "upload_manifest": lambda: client.upload_manifest(repo, sig.body, media_type=mt.OCI_MANIFEST),
        "list_referrers": referrers,
        "has_acr_api": lambda: client.has_acr_api(),
        "blob_exists": lambda: _check(client.blob_exists(repo, layer.digest) and not client.blob_exists(
            repo, compute_digest(b"absent"))),
        "mount_blob": lambda: _check(client.mount_blob(other, layer.digest, repo)
                                     and client.blob_exists(other, layer.digest)),
        "get_manifest": lambda: _check(client.get_manifest(repo, "v1").digest == state["digest"]),
        "download_manifest": lambda: _check(client.download_manifest(repo, state["digest"]).data.read()
                                            == image.body),
        "get_manifest_descriptor": lambda: _check(client.get_manifest_descriptor(repo, "v1").size == len(image.body)),
        "download_blob": lambda: _check(b"".join(client.download_blob(repo, layer.digest)) == layer.data),
        "download_blob_to_file": lambda: _check(
            client.download_blob_to_file(repo, layer.digest, tmp_path / "layer") == len(layer.data)
            and (tmp_path / "layer").read_bytes() == layer.data),
        "list_repository_names": lambda: _check(repo in list(client.list_repository_names())),
        "get_repository_properties": lambda: _check(client.get_repository_properties(repo).name == repo),
        "list_tag_properties": lambda: _check(sorted(t.name for t in client.list_tag_properties(repo))
                                              == _expected_tags(client, state["digest"])),
        "get_tag_properties": lambda: _check(client.get_tag_properties(repo, "v1").digest == state["digest"]),
        "list_manifest_properties": lambda: _check(
            state["digest"] in [m.digest for m in client.list_manifest_properties(repo)]),
        "get_manifest_properties": lambda: _check(client.get_manifest_properties(repo, "v1").architecture == "amd64"),
        "update_repository_properties": lambda: client.update_repository_properties(
            repo, RepositoryProperties(can_delete=True)),
        "update_tag_properties": lambda: client.update_tag_properties(repo, "v1", ArtifactTagProperties(can_read=True)),
        "update_manifest_properties": lambda: client.update_manifest_properties(
            repo, state["digest"], ArtifactManifestProperties(can_list=True)),
        "delete_tag": lambda: (client.delete_tag(repo, "v1"),
                               _check(client.get_manifest(repo, state["digest"]).digest == state["digest"])),
        "delete_manifest": lambda: client.delete_manifest(repo, state["digest"]),
        "delete_blob": lambda: (client.delete_blob(repo, layer.digest),
                                _check(not client.blob_exists(repo, layer.digest))),
        "delete_repository": lambda: client.delete_repository(other),
        # Last: afterwards this client uploads no more. Every upload above finished, so none is left to delete.
        "abort_uploads": lambda: _check(client.abort_uploads() == 0),
    }
    return calls


def _expected_tags(client: ContainerRegistryClient, digest: str) -> list[str]:
    """``v1``, plus the referrers fallback tag where the registry has no referrers API (distribution 2.8)."""
    return ["v1"] if client.has_acr_api() else sorted(["v1", digest.replace(":", "-")])


def _check(ok: Any) -> None:
    assert ok


def _public_methods(client: ContainerRegistryClient) -> set[str]:
    return {name for name in dir(client) if not name.startswith("_") and name != "close"
            and callable(getattr(client, name))}


@pytest.fixture(scope="module")
def matrix() -> dict[str, dict[str, str]]:
    return {}


@pytest.mark.parametrize("backend", ["dockyard", "distribution"])
def test_every_method(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                      matrix: dict[str, dict[str, str]]) -> None:
    server = request.getfixturevalue("dockyard_server" if backend == "dockyard" else "distribution_server")
    with ContainerRegistryClient(server.url, None) as client:
        calls = _exercise(client, tmp_path)
        assert set(calls) == _public_methods(client), "the matrix must name every public method"
        for name, call in calls.items():
            if backend == "distribution" and name in ACR_ONLY:
                with pytest.raises(UnsupportedOperationError):
                    call()
                matrix.setdefault(name, {})[backend] = "UnsupportedOperationError (no /acr/v1)"
                continue
            call()
            matrix.setdefault(name, {})[backend] = "ok"
    if len(next(iter(matrix.values()))) == 2:
        print("\n| method | dockyard serve | distribution |\n|---|---|---|")
        for name in calls:
            print(f"| {name} | {matrix[name]['dockyard']} | {matrix[name]['distribution']} |")
