"""``dockyard purge`` against real registries: every flag, the safety rules, and dry-run == real run.

On ``dockyard serve`` ages come from the ACR metadata (``lastUpdateTime``, set by the server clock at push), so
these tests use ``--ago 0d`` (everything pushed so far is old enough) and large values (nothing is). Ages from
image config ``created`` times are tested on docker-registry, which has no ``/acr/v1``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.conftest import Cli, repo_digests, repo_tags
from tests.support.images import Content, make_artifact, make_image, make_multiarch_index, push
from tests.support.servers import DistributionServer, DockyardServer


def purge(cli: Cli, registry: str, *args: str) -> dict[str, Any]:
    """Run ``dockyard purge … -o json`` and return its report."""
    return cli("purge", "-r", registry, "-o", "json", *args).ok().json()


def deleted(report: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(tags, manifest digests) a report lists."""
    tags = {t["tag"] for r in report["repositories"] for t in r["tags"]}
    manifests = {m["digest"] for r in report["repositories"] for m in r["manifests"]}
    return tags, manifests


def push_tags(server: DockyardServer | DistributionServer, repo: str, *tags: str, **image: Any) -> dict[str, Content]:
    """Push one distinct image per tag, in order (so later tags are newer)."""
    out = {}
    for tag in tags:
        content = make_image(seed=f"{repo}-{tag}", layers=1, layer_size=256, **image)
        push(content, server.url, repo, tag)
        out[tag] = content
    return out


def test_age_keep_exclude_and_regex(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    push_tags(dockyard_server, repo_name, "v1", "v2", "v3", "v4", "x-hello-y")
    everything = f"{repo_name}:.*"

    assert deleted(purge(cli, reg, "--filter", everything, "--ago", "3650d", "--dry-run")) == (set(), set())
    assert deleted(purge(cli, reg, "--filter", everything, "--ago", "0d", "--dry-run"))[0] == {
        "v1", "v2", "v3", "v4", "x-hello-y"
    }
    # The tag side is a search (not anchored); the repository side is anchored.
    assert deleted(purge(cli, reg, "--filter", f"{repo_name}:hello", "--ago", "0d", "--dry-run"))[0] == {"x-hello-y"}
    longer = f"{repo_name}x"
    push_tags(dockyard_server, longer, "v1")
    plan = purge(cli, reg, "--filter", f"{repo_name}:.*", "--ago", "0d", "--dry-run")
    assert [r["repository"] for r in plan["repositories"]] == [repo_name]
    plan = purge(cli, reg, "--filter", f"{repo_name}x:.*", "--ago", "0d", "--dry-run")
    assert [r["repository"] for r in plan["repositories"]] == [longer]
    # Several filters on one repository are OR-joined.
    two = purge(cli, reg, "-f", f"{repo_name}:^v1$", "-f", f"{repo_name}:^v2$", "--ago", "0d", "--dry-run")
    assert deleted(two)[0] == {"v1", "v2"}
    # --keep spares the newest N of the matching tags; --exclude spares what it matches.
    keep = purge(cli, reg, "--filter", f"{repo_name}:^v", "--ago", "0d", "--keep", "2", "--dry-run")
    assert deleted(keep)[0] == {"v1", "v2"}
    excl = purge(cli, reg, "--filter", f"{repo_name}:^v", "--ago", "0d", "--exclude", "^v[34]$", "--dry-run")
    assert deleted(excl)[0] == {"v1", "v2"}
    both = purge(cli, reg, "--filter", f"{repo_name}:^v", "--ago", "0d", "--keep", "1", "--exclude", "v4", "--dry-run")
    assert deleted(both)[0] == {"v1", "v2"}

    # The real run untags exactly that; manifests stay without --untagged.
    before = repo_digests(cli, reg, repo_name)
    report = purge(cli, reg, "--filter", f"{repo_name}:^v", "--ago", "0d", "--keep", "2")
    assert deleted(report)[0] == {"v1", "v2"} and report["deleted_tags"] == 2 and report["deleted_manifests"] == 0
    assert repo_tags(cli, reg, repo_name) == {"v3", "v4", "x-hello-y"}
    assert repo_digests(cli, reg, repo_name) == before


def test_text_output(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    push_tags(dockyard_server, repo_name, "a", "b")
    out = cli("purge", "-r", reg, "--filter", f"{repo_name}:^a$", "--ago", "0d", "--dry-run").ok().stdout
    assert f"Would delete tag {repo_name}:a" in out and "Number of tags to delete: 1" in out
    out = cli("purge", "-r", reg, "--filter", f"{repo_name}:^a$", "--ago", "0d").ok().stdout
    assert f"Deleted tag {repo_name}:a" in out and "Number of deleted tags: 1" in out
    assert repo_tags(cli, reg, repo_name) == {"b"}


def test_locked_tags(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    push_tags(dockyard_server, repo_name, "v1", "v2", "v3")
    cli("tag", "update", "-r", reg, f"{repo_name}:v2", "--delete-enabled", "false").ok()
    cli("tag", "update", "-r", reg, f"{repo_name}:v3", "--write-enabled", "false").ok()
    args = ("--filter", f"{repo_name}:.*", "--ago", "0d")
    assert deleted(purge(cli, reg, *args, "--dry-run"))[0] == {"v1"}
    assert deleted(purge(cli, reg, *args))[0] == {"v1"}
    assert repo_tags(cli, reg, repo_name) == {"v2", "v3"}
    assert deleted(purge(cli, reg, *args, "--include-locked", "--dry-run"))[0] == {"v2", "v3"}
    assert deleted(purge(cli, reg, *args, "--include-locked"))[0] == {"v2", "v3"}
    assert repo_tags(cli, reg, repo_name) == set()


def test_untagged_index_children_and_signatures(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    """A tagged multi-arch index keeps its untagged children; a signature lives as long as its subject."""
    reg = dockyard_server.host
    index = make_multiarch_index(seed=f"{repo_name}-multi", layers=1, layer_size=256)
    push(index, dockyard_server.url, repo_name, "multi")
    kept = make_image(seed=f"{repo_name}-kept", layers=1, layer_size=256)
    push(kept, dockyard_server.url, repo_name, "kept")
    gone = make_image(seed=f"{repo_name}-gone", layers=1, layer_size=256)
    push(gone, dockyard_server.url, repo_name, "gone")
    orphan = make_image(seed=f"{repo_name}-orphan", layers=1, layer_size=256)
    push(orphan, dockyard_server.url, repo_name)  # untagged from the start
    sig_kept = make_artifact({"sig": b"kept"}, artifact_type="application/vnd.example.sig", subject=kept)
    sig_gone = make_artifact({"sig": b"gone"}, artifact_type="application/vnd.example.sig", subject=gone)
    sig_index = make_artifact({"sig": b"multi"}, artifact_type="application/vnd.example.sig", subject=index)
    for sig in (sig_kept, sig_gone, sig_index):
        push(sig, dockyard_server.url, repo_name)
    children = {c.digest for c in index.children}
    everything = repo_digests(cli, reg, repo_name)
    assert children <= everything

    args = ("--filter", f"{repo_name}:^gone$", "--ago", "0d", "--untagged")
    plan = purge(cli, reg, *args, "--dry-run")
    expected = {gone.digest, sig_gone.digest, orphan.digest}
    assert deleted(plan) == ({"gone"}, expected)
    # Referrers go before their subjects.
    order = [m["digest"] for m in plan["repositories"][0]["manifests"]]
    assert order.index(sig_gone.digest) < order.index(gone.digest)

    report = purge(cli, reg, *args)
    assert report["repositories"] == plan["repositories"]
    assert repo_digests(cli, reg, repo_name) == everything - expected
    assert repo_tags(cli, reg, repo_name) == {"multi", "kept"}

    # Untagging the index makes it and (then) its children and signature collectable.
    cli("tag", "delete", "-r", reg, f"{repo_name}:multi").ok()
    only = purge(cli, reg, "--filter", f"{repo_name}:.*", "--untagged-only", "--dry-run")
    assert deleted(only) == (set(), {index.digest, sig_index.digest, *children})
    assert deleted(purge(cli, reg, "--filter", f"{repo_name}:.*", "--untagged-only", "--ago", "3650d")) == (
        set(), set()
    )
    assert deleted(purge(cli, reg, "--filter", f"{repo_name}:.*", "--untagged-only")) == deleted(only)
    assert repo_digests(cli, reg, repo_name) == {kept.digest, sig_kept.digest}


def test_untagged_only_keep_and_locked_manifests(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    images = [make_image(seed=f"{repo_name}-{i}", layers=1, layer_size=128) for i in range(4)]
    for image in images:
        push(image, dockyard_server.url, repo_name)  # untagged, oldest first
    push_tags(dockyard_server, repo_name, "tagged")
    cli("manifest", "update", "-r", reg, f"{repo_name}@{images[0].digest}", "--delete-enabled", "false").ok()
    args = ("--filter", f"{repo_name}:.*", "--untagged-only")
    assert deleted(purge(cli, reg, *args, "--dry-run"))[1] == {images[1].digest, images[2].digest, images[3].digest}
    # --keep with --untagged-only keeps the newest N dangling manifests.
    assert deleted(purge(cli, reg, *args, "--keep", "2", "--dry-run"))[1] == {images[1].digest}
    assert deleted(purge(cli, reg, *args, "--keep", "2"))[1] == {images[1].digest}
    assert deleted(purge(cli, reg, *args, "--include-locked", "--dry-run"))[1] == {
        images[0].digest, images[2].digest, images[3].digest
    }
    purge(cli, reg, *args, "--include-locked")
    assert {images[i].digest for i in range(4)} & repo_digests(cli, reg, repo_name) == set()
    assert repo_tags(cli, reg, repo_name) == {"tagged"}


def test_dry_run_equals_real_run(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    """Every flag at once: the dry-run plan is exactly what the real run deletes, and nothing else goes."""
    reg = dockyard_server.host
    tagged = push_tags(dockyard_server, repo_name, "a1", "a2", "a3", "a4", "keep-me", "b1")
    index = make_multiarch_index(seed=f"{repo_name}-idx", layers=1, layer_size=128)
    push(index, dockyard_server.url, repo_name, "a-index")
    push(make_artifact({"s": b"1"}, subject=tagged["a1"]), dockyard_server.url, repo_name)
    push(make_artifact({"s": b"2"}, subject=tagged["b1"]), dockyard_server.url, repo_name)
    cli("tag", "update", "-r", reg, f"{repo_name}:a3", "--delete-enabled", "false").ok()
    second = f"{repo_name}-second"
    push_tags(dockyard_server, second, "a1", "z1")

    args = ("--filter", f"{repo_name}(-second)?:^a", "--filter", f"{repo_name}:keep", "--ago", "0d", "--keep", "1",
            "--exclude", "^keep", "--untagged", "--concurrency", "3")
    before = {r: (repo_tags(cli, reg, r), repo_digests(cli, reg, r)) for r in (repo_name, second)}
    plan = purge(cli, reg, *args, "--dry-run")
    assert plan["dry_run"] is True
    report = purge(cli, reg, *args)
    assert report["dry_run"] is False
    assert report["repositories"] == plan["repositories"]
    assert report["deleted_tags"] == plan["deleted_tags"] > 0
    assert report["deleted_manifests"] == plan["deleted_manifests"]
    entries = [m for r in report["repositories"] for m in r["manifests"]]
    assert entries and all(set(m) == {"digest", "media_type"} and m["media_type"] for m in entries)
    for repo in (repo_name, second):
        entry = next((r for r in plan["repositories"] if r["repository"] == repo), {"tags": [], "manifests": []})
        tags_before, digests_before = before[repo]
        assert repo_tags(cli, reg, repo) == tags_before - {t["tag"] for t in entry["tags"]}
        assert repo_digests(cli, reg, repo) == digests_before - {m["digest"] for m in entry["manifests"]}
    # Nothing left to do: a second run plans nothing.
    assert deleted(purge(cli, reg, *args, "--dry-run")) == (set(), set())


@pytest.mark.parametrize(
    "args",
    [
        ("--filter", "x:.*"),  # no --ago
        ("--ago", "1d"),  # no --filter
        ("--filter", "x", "--ago", "1d"),
        ("--filter", "x:(", "--ago", "1d"),
        ("--filter", "x:.*", "--ago", "yesterday"),
        ("--filter", "x:.*", "--ago", "1d", "--untagged", "--untagged-only"),
        ("--filter", "x:.*", "--ago", "1d", "--exclude", "[z"),
        ("--filter", "x:.*", "--ago", "1d", "--keep", "-1"),
    ],
)
def test_bad_input(cli: Cli, dockyard_server: DockyardServer, args: tuple[str, ...]) -> None:
    cli("purge", "-r", dockyard_server.host, *args).failed(2)


def test_ages_from_image_config_on_docker_registry(
    cli: Cli, distribution_server: DistributionServer, repo_name: str
) -> None:
    """Without /acr/v1 the age is the image config's ``created`` time."""
    reg = distribution_server.host
    push_tags(distribution_server, repo_name, "old-1", "old-2", created="2020-01-01T00:00:00Z")
    push_tags(distribution_server, repo_name, "new-1", created="2999-01-01T00:00:00Z")
    index = make_multiarch_index(seed=f"{repo_name}-multi", layers=1, layer_size=128)  # children created in 2024
    push(index, distribution_server.url, repo_name, "multi")
    signature = make_image(seed=f"{repo_name}-sig", layers=1, layer_size=64, subject=index)  # created in 2024
    push(signature, distribution_server.url, repo_name, "multi-sig")
    args = ("--filter", f"{repo_name}:^old", "--ago", "365d")
    plan = purge(cli, reg, *args, "--dry-run")
    assert deleted(plan)[0] == {"old-1", "old-2"}
    # Equal ages: the tie goes by name, so --keep 1 keeps old-1.
    assert deleted(purge(cli, reg, *args, "--keep", "1", "--dry-run"))[0] == {"old-2"}
    before = repo_digests(cli, reg, repo_name)
    report = purge(cli, reg, *args, "--untagged")
    assert report["repositories"][0]["tags"] == plan["repositories"][0]["tags"]
    gone = deleted(report)[1]
    assert len(gone) == 2 and gone < before
    assert repo_tags(cli, reg, repo_name) == {"new-1", "multi", "multi-sig"}
    assert repo_digests(cli, reg, repo_name) == before - gone
    assert {c.digest for c in index.children} <= before - gone
    # Without a manifest listing the registry cannot show untagged manifests, so a subject that is no longer
    # tagged is assumed to exist: its referrer loses its tag but is not deleted.
    cli("tag", "delete", "-r", reg, f"{repo_name}:multi").ok()
    report = purge(cli, reg, "--filter", f"{repo_name}:^multi-sig$", "--ago", "365d", "--untagged")
    assert deleted(report) == ({"multi-sig"}, set())
    assert repo_tags(cli, reg, repo_name) == {"new-1"}
    cli("manifest", "show", "-r", reg, f"{repo_name}@{signature.digest}").ok()


def test_locked_repository_is_reported_as_skipped(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    push_tags(dockyard_server, repo_name, "v1", "v2")
    cli("repo", "update", "-r", reg, repo_name, "--delete-enabled", "false").ok()
    report = purge(cli, reg, "--filter", f"{repo_name}:.*", "--ago", "0d")
    assert report["repositories"] == [] and report["deleted_tags"] == 0
    assert {s["tag"] for s in report["skipped"]} == {"v1", "v2"}
    assert repo_tags(cli, reg, repo_name) == {"v1", "v2"}
    text = cli("purge", "-r", reg, "--filter", f"{repo_name}:.*", "--ago", "0d").ok().stdout
    assert f"Skipped tag {repo_name}:v1" in text
