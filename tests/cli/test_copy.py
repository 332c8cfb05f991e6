"""``dockyard copy`` between OCI layouts, dockyard serve and docker-registry; skopeo reads the result."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.layout import OCILayout
from tests.cli.conftest import Cli, repo_tags
from tests.support.images import make_artifact, make_image, make_multiarch_index, make_nested_index, push
from tests.support.servers import DistributionServer, DockyardServer
from tests.support.skopeo import Skopeo


def blobs_of(layout_dir: Path) -> dict[str, bytes]:
    layout = OCILayout.open(layout_dir)
    return {d: layout.read_blob(d) for d in layout.iter_blobs()}


def test_layout_to_dockyard_to_distribution_and_back(
    cli: Cli, dockyard_server: DockyardServer, distribution_server: DistributionServer, repo_name: str,
    tmp_path: Path,
) -> None:
    from tests.support.images import write_to_layout

    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/arm/v7"), seed=repo_name, layer_size=200_000)
    source = tmp_path / "source"
    write_to_layout(index, OCILayout(source).create(), "v1")

    first = cli("copy", f"oci:{source}:v1", f"{dockyard_server.host}/{repo_name}:v1", "-o", "json").ok().json()
    assert first["images"][0]["digest"] == index.digest
    assert first["images"][0]["media_type"] == index.media_type
    assert first["blobs_copied"] == len(index.all_blobs()) and first["manifests"] == 4
    assert cli("manifest", "get", "-r", dockyard_server.host, f"{repo_name}:v1").ok().stdout.encode() == index.body

    second = cli("copy", f"{dockyard_server.host}/{repo_name}:v1", f"{distribution_server.host}/{repo_name}:v1",
                 "--concurrency", "3", "-o", "json").ok().json()
    assert second["images"][0]["digest"] == index.digest

    back = tmp_path / "back"
    third = cli("copy", f"{distribution_server.host}/{repo_name}:v1", f"oci:{back}:v1", "-o", "json").ok().json()
    assert third["images"][0]["digest"] == index.digest
    assert blobs_of(back) == blobs_of(source)
    assert OCILayout.open(back).resolve("v1") == OCILayout.open(source).resolve("v1")

    # Everything is there already: nothing moves the second time.
    again = cli("copy", f"oci:{source}:v1", f"{dockyard_server.host}/{repo_name}:v1", "-o", "json").ok().json()
    assert again["blobs_copied"] == 0 and again["blobs_skipped"] == len(index.all_blobs())


def test_platform_subset(cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path) -> None:
    reg = dockyard_server.host
    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/arm/v7"), seed=repo_name, layers=1)
    push(index, dockyard_server.url, repo_name, "v1")
    by_platform = {str(c.platform): c for c in index.children}
    dest = f"{repo_name}-subset"
    result = cli("copy", f"{reg}/{repo_name}:v1", f"{reg}/{dest}:v1", "--platform", "linux/arm64",
                 "--platform", "linux/arm", "-o", "json").ok().json()
    rewritten = json.loads(cli("manifest", "get", "-r", reg, f"{dest}:v1").ok().stdout)
    assert [m["digest"] for m in rewritten["manifests"]] == [
        by_platform["linux/arm64"].digest, by_platform["linux/arm/v7"].digest
    ]
    assert result["images"][0]["digest"] != index.digest
    cli("manifest", "show", "-r", reg, f"{dest}@{by_platform['linux/arm64'].digest}").ok()
    cli("manifest", "show", "-r", reg, f"{dest}@{by_platform['linux/amd64'].digest}").failed(1)
    # Same registry, another repository: blobs are mounted, not copied.
    assert result["blobs_mounted"] == 4 and result["blobs_copied"] == 0

    out = tmp_path / "arm64"
    cli("copy", f"{reg}/{repo_name}:v1", f"oci:{out}:only", "--platform", "linux/arm64").ok()
    manifest = json.loads(OCILayout.open(out).read_manifest(OCILayout.open(out).resolve("only").digest))
    assert [m["platform"]["architecture"] for m in manifest["manifests"]] == ["arm64"]
    assert "no manifest for" in cli("copy", f"{reg}/{repo_name}:v1", f"oci:{out}:none", "--platform",
                                    "windows/amd64").failed().stderr
    single = f"{dest}@{by_platform['linux/arm64'].digest}"
    cli("copy", f"{reg}/{single}", f"oci:{out}:single", "--platform", "linux/arm64").ok()
    assert "not windows/amd64" in cli("copy", f"{reg}/{single}", f"oci:{out}:single2", "--platform",
                                      "windows/amd64").failed().stderr


def test_skopeo_pulls_what_dockyard_copied(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    from tests.support.images import write_to_layout

    skopeo = Skopeo(tmp_path / "skopeo")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=repo_name)
    source = tmp_path / "source"
    write_to_layout(index, OCILayout(source).create(), "v1")
    cli("copy", f"oci:{source}:v1", f"{dockyard_server.host}/{repo_name}:multi").ok()
    out = tmp_path / "skopeo-out"
    skopeo.copy(f"docker://{dockyard_server.host}/{repo_name}:multi", f"oci:{out}:v1", "--all",
                "--preserve-digests")
    assert OCILayout.open(out).resolve("v1").digest == index.digest
    assert blobs_of(out) == blobs_of(source)


def test_nested_index(cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path) -> None:
    from tests.support.images import write_to_layout

    index = make_nested_index(seed=repo_name)
    source = tmp_path / "source"
    write_to_layout(index, OCILayout(source).create(), "v1")
    result = cli("copy", f"oci:{source}:v1", f"{dockyard_server.host}/{repo_name}:nested", "-o", "json").ok().json()
    assert result["manifests"] == len(list(index.walk()))
    back = tmp_path / "back"
    cli("copy", f"{dockyard_server.host}/{repo_name}:nested", f"oci:{back}:v1").ok()
    assert blobs_of(back) == blobs_of(source)


def test_referrers_and_all_tags(
    cli: Cli, dockyard_server: DockyardServer, distribution_server: DistributionServer, repo_name: str,
    tmp_path: Path,
) -> None:
    reg = dockyard_server.host
    image = make_image(seed=repo_name, layers=1)
    push(image, dockyard_server.url, repo_name, "v1")
    push(make_image(seed=f"{repo_name}-2", layers=1), dockyard_server.url, repo_name, "v2")
    sig = make_artifact({"sig": b"s"}, artifact_type="application/vnd.example.sig", subject=image)
    push(sig, dockyard_server.url, repo_name)
    attestation = make_artifact({"att": b"a"}, artifact_type="application/vnd.example.att", subject=sig)
    push(attestation, dockyard_server.url, repo_name)

    dest = f"{repo_name}-with-refs"
    result = cli("copy", f"{reg}/{repo_name}:v1", f"{reg}/{dest}:v1", "--referrers", "-o", "json").ok().json()
    assert set(result["images"][0]["referrers"]) == {sig.digest, attestation.digest}
    found = cli("manifest", "referrers", "-r", reg, f"{dest}:v1", "-o", "json").ok().json()
    assert [r["digest"] for r in found] == [sig.digest]
    nested = cli("manifest", "referrers", "-r", reg, f"{dest}@{sig.digest}", "-o", "json").ok().json()
    assert [r["digest"] for r in nested] == [attestation.digest]
    # Through an OCI layout and back: referrers are kept as untagged index.json entries.
    layout_dir = tmp_path / "with-refs"
    cli("copy", f"{reg}/{repo_name}:v1", f"oci:{layout_dir}:v1", "--referrers").ok()
    assert {d.digest for d in OCILayout.open(layout_dir).index()} == {image.digest, sig.digest, attestation.digest}
    restored = f"{repo_name}-restored"
    result = cli("copy", f"oci:{layout_dir}:v1", f"{reg}/{restored}:v1", "--referrers", "-o", "json").ok().json()
    assert set(result["images"][0]["referrers"]) == {sig.digest, attestation.digest}
    found = cli("manifest", "referrers", "-r", reg, f"{restored}:v1", "-o", "json").ok().json()
    assert [r["digest"] for r in found] == [sig.digest]
    plain = f"{repo_name}-plain"
    cli("copy", f"{reg}/{repo_name}:v1", f"{reg}/{plain}:v1").ok()
    assert cli("manifest", "referrers", "-r", reg, f"{plain}:v1", "-o", "json").ok().json() == []

    backup = tmp_path / "backup"
    tags = cli("copy", f"{reg}/{repo_name}", f"oci:{backup}", "--all-tags", "-o", "json").ok().json()
    assert {i["destination"].rsplit(":", 1)[1] for i in tags["images"]} == {"v1", "v2"}
    assert sorted(OCILayout.open(backup).tags()) == ["v1", "v2"]
    cli("copy", f"oci:{backup}", f"{distribution_server.host}/{repo_name}", "--all-tags").ok()
    assert repo_tags(cli, distribution_server.host, repo_name) == {"v1", "v2"}


def test_copy_errors(cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path) -> None:
    reg = dockyard_server.host
    push(make_image(seed=repo_name, layers=1), dockyard_server.url, repo_name, "v1")
    assert "not found" in cli("copy", f"{reg}/{repo_name}:nope", f"oci:{tmp_path / 'x'}:v1").failed(1).stderr
    cli("copy", f"oci:{tmp_path / 'missing'}:v1", f"{reg}/{repo_name}:v2").failed()
    cli("copy", f"oci:{tmp_path / 'missing'}", f"{reg}/{repo_name}:v2").failed(2)
    cli("copy", f"{reg}/{repo_name}:v1", f"{reg}/{repo_name}-b", "--all-tags").failed(2)
    cli("copy", f"{reg}/{repo_name}:v1", f"{reg}/{repo_name}-b:v1", "--platform", "linux").failed(2)
    cli("copy", f"{reg}/{repo_name}:v1", f"{reg}/{repo_name}-b@sha256:{'0' * 64}").failed(2)
    cli("copy", f"{repo_name}:v1", f"{repo_name}-b:v1").failed(2)  # no registry anywhere


def test_docker_manifest_list_between_registries(
    cli: Cli, dockyard_server: DockyardServer, distribution_server: DistributionServer, repo_name: str
) -> None:
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=repo_name, docker=True, layers=1)
    push(index, dockyard_server.url, repo_name, "v1")
    cli("copy", f"{dockyard_server.host}/{repo_name}:v1", f"{distribution_server.host}/{repo_name}:v1").ok()
    raw = cli("manifest", "get", "-r", distribution_server.host, f"{repo_name}:v1").ok().stdout.encode()
    assert raw == index.body
