"""``dockyard repo|tag|manifest`` against real registries: happy paths, locks and clean errors."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli
from tests.support.images import make_artifact, make_image, push
from tests.support.servers import DistributionServer, DockyardServer

COMMANDS = [
    ("repo", "list"), ("repo", "show"), ("repo", "update"), ("repo", "delete"),
    ("tag", "list"), ("tag", "show"), ("tag", "update"), ("tag", "delete"),
    ("manifest", "list"), ("manifest", "show"), ("manifest", "get"), ("manifest", "update"),
    ("manifest", "delete"), ("manifest", "referrers"),
    ("purge",), ("push",), ("pull",), ("copy",), ("login",), ("logout",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_an_example(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help").ok()
    assert "Example:" in result.stdout
    assert "dockyard " + command[0] in result.stdout.split("Example:", 1)[1]


def test_repositories_tags_and_manifests(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    first = make_image(seed=f"{repo_name}-1")
    second = make_image(seed=f"{repo_name}-2")
    push(first, dockyard_server.url, repo_name, "v1")
    push(second, dockyard_server.url, repo_name, "v2")

    assert repo_name in {r["name"] for r in cli("repo", "list", "-r", reg, "-o", "json").ok().json()}
    assert repo_name in cli("repo", "list", "-r", reg).ok().stdout
    shown = cli("repo", "show", "-r", reg, repo_name, "-o", "json").ok().json()
    assert shown["name"] == repo_name and shown["tag_count"] == 2 and shown["manifest_count"] == 2

    tags = cli("tag", "list", "-r", reg, repo_name, "-o", "json", "--orderby", "time_desc").ok().json()
    assert [t["name"] for t in tags] == ["v2", "v1"]
    assert [t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json", "--orderby", "time_asc",
                                   "--top", "1").ok().json()] == ["v1"]
    tag = cli("tag", "show", "-r", reg, f"{repo_name}:v1", "-o", "json").ok().json()
    assert tag["digest"] == first.digest and tag["repository"] == repo_name
    assert first.digest in cli("tag", "show", "-r", reg, f"{repo_name}:v1").ok().stdout

    manifests = cli("manifest", "list", "-r", reg, repo_name, "-o", "json").ok().json()
    assert {m["digest"] for m in manifests} == {first.digest, second.digest}
    shown = cli("manifest", "show", "-r", reg, f"{repo_name}:v2", "-o", "json").ok().json()
    assert shown["digest"] == second.digest and shown["architecture"] == "amd64" and shown["tags"] == ["v2"]
    raw = cli("manifest", "get", "-r", reg, f"{repo_name}@{second.digest}").ok()
    assert raw.stdout.encode() == second.body

    # A registry given inside the reference, as a full URL or through the environment.
    assert cli("tag", "show", f"{reg}/{repo_name}:v1", "-o", "json").ok().json()["digest"] == first.digest
    assert cli("tag", "list", "-r", dockyard_server.url, repo_name, "-o", "json").ok().json()
    assert cli("tag", "list", repo_name, "-o", "json", env={"DOCKYARD_REGISTRY": reg}).ok().json()
    # The common options may also come before the command name.
    assert [t["name"] for t in cli("-r", reg, "-o", "json", "tag", "list", repo_name, "--top", "1").ok().json()] == [
        "v1"
    ]
    env = {"AZURE_CONTAINERREGISTRY_ENDPOINT": dockyard_server.url}
    assert cli("repo", "show", repo_name, "-o", "json", env=env).ok().json()["name"] == repo_name


def test_locks_untag_and_delete(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    image = make_image(seed=repo_name)
    push(image, dockyard_server.url, repo_name, "v1")
    push(image, dockyard_server.url, repo_name, "v1-alias")

    locked = cli("tag", "update", "-r", reg, f"{repo_name}:v1", "--delete-enabled", "false", "-o", "json").ok().json()
    assert locked["can_delete"] is False
    cli("tag", "delete", "-r", reg, f"{repo_name}:v1").failed(1)
    cli("tag", "update", "-r", reg, f"{repo_name}:v1", "--delete-enabled", "true").ok()
    untagged = cli("tag", "delete", "-r", reg, f"{repo_name}:v1", "-o", "json").ok().json()
    assert untagged["digest"] == image.digest
    # Untag keeps the manifest (still reachable through the other tag and by digest).
    assert cli("manifest", "show", "-r", reg, f"{repo_name}@{image.digest}", "-o", "json").ok().json()["tags"] == [
        "v1-alias"
    ]
    cli("tag", "show", "-r", reg, f"{repo_name}:v1").failed(1)

    ref = f"{repo_name}@{image.digest}"
    props = cli("manifest", "update", "-r", reg, ref, "--delete-enabled", "no", "--write-enabled", "0", "-o", "json")
    assert props.ok().json()["can_delete"] is False and props.json()["can_write"] is False
    assert "not allowed" in cli("manifest", "delete", "-r", reg, ref).failed(1).stderr
    cli("manifest", "update", "-r", reg, ref, "--delete-enabled", "yes", "--write-enabled", "1").ok()
    cli("manifest", "delete", "-r", reg, ref).ok()
    cli("manifest", "show", "-r", reg, ref).failed(1)

    push(image, dockyard_server.url, repo_name, "v2")
    assert cli("repo", "update", "-r", reg, repo_name, "--delete-enabled", "false", "-o", "json").ok().json()[
        "can_delete"
    ] is False
    cli("repo", "delete", "-r", reg, repo_name).failed(1)
    cli("repo", "update", "-r", reg, repo_name, "--delete-enabled", "true").ok()
    cli("repo", "delete", "-r", reg, repo_name).ok()
    assert "not found" in cli("repo", "show", "-r", reg, repo_name).failed(1).stderr


def test_referrers(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    image = make_image(seed=repo_name)
    push(image, dockyard_server.url, repo_name, "v1")
    signature = make_artifact({"sig": b"signed"}, artifact_type="application/vnd.example.sig", subject=image)
    sbom = make_artifact({"sbom": b"{}"}, artifact_type="application/vnd.example.sbom", subject=image)
    push(signature, dockyard_server.url, repo_name)
    push(sbom, dockyard_server.url, repo_name)
    found = cli("manifest", "referrers", "-r", reg, f"{repo_name}:v1", "-o", "json").ok().json()
    assert {r["digest"] for r in found} == {signature.digest, sbom.digest}
    only = cli("manifest", "referrers", "-r", reg, f"{repo_name}@{image.digest}", "--artifact-type",
               "application/vnd.example.sig", "-o", "json").ok().json()
    assert [r["digest"] for r in only] == [signature.digest]


def test_any_registry(cli: Cli, distribution_server: DistributionServer, repo_name: str) -> None:
    """The same commands on CNCF distribution (no /acr/v1): tags, manifests, untag."""
    reg = distribution_server.host
    image = make_image(seed=repo_name)
    push(image, distribution_server.url, repo_name, "v1")
    push(image, distribution_server.url, repo_name, "v2")
    assert repo_name in {r["name"] for r in cli("repo", "list", "-r", reg, "-o", "json").ok().json()}
    assert {t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json").ok().json()} == {"v1", "v2"}
    shown = cli("manifest", "show", "-r", reg, f"{repo_name}:v1", "-o", "json").ok().json()
    assert shown["digest"] == image.digest
    assert cli("manifest", "get", "-r", reg, f"{repo_name}:v1").ok().stdout.encode() == image.body
    cli("tag", "delete", "-r", reg, f"{repo_name}:v1").ok()
    assert {t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json").ok().json()} == {"v2"}
    assert cli("manifest", "show", "-r", reg, f"{repo_name}:v2", "-o", "json").ok().json()["digest"] == image.digest
    # Locks need ACR's metadata API: a clear one-line refusal.
    assert "not supported" in cli("tag", "update", "-r", reg, f"{repo_name}:v2", "--delete-enabled", "false").failed(
        1
    ).stderr
    assert "not found" in cli("tag", "list", "-r", reg, f"{repo_name}-none").failed(1).stderr


@pytest.mark.parametrize(
    "args",
    [
        ("tag", "show", "Not A Repo:v1"),
        ("tag", "show", "{repo}"),
        ("tag", "show", "{repo}@sha256:abc"),
        ("tag", "update", "{repo}:v1"),
        ("tag", "update", "{repo}:v1", "--delete-enabled", "maybe"),
        ("tag", "list", "{repo}", "--top", "-1"),
        ("repo", "show", "UPPER"),
        ("manifest", "show", "{repo}"),
        ("tag", "list", "{repo}", "--orderby", "sideways"),
    ],
)
def test_bad_input(cli: Cli, dockyard_server: DockyardServer, repo_name: str, args: tuple[str, ...]) -> None:
    cli(*(a.format(repo=repo_name) for a in args), "-r", dockyard_server.host).failed(2)


def test_unknown_things(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    reg = dockyard_server.host
    for args in (("tag", "list", repo_name), ("repo", "show", repo_name), ("manifest", "list", repo_name),
                 ("tag", "show", f"{repo_name}:nope"), ("manifest", "get", f"{repo_name}:nope"),
                 ("manifest", "delete", f"{repo_name}:nope"), ("repo", "delete", repo_name)):
        assert "not found" in cli(*args, "-r", reg).failed(1).stderr


def test_missing_registry_and_unreachable(cli: Cli) -> None:
    assert "no registry" in cli("repo", "list").failed(2).stderr
    assert "--registry" in cli("repo", "list").stderr
    cli("repo", "list", "-r", "127.0.0.1:1").failed(1)
    cli("repo", "list", "-r", "ftp://x").failed(2)


def test_credentials(cli: Cli, dockyard_auth_server: DockyardServer, repo_name: str) -> None:
    from tests.conftest import TEST_USER

    reg = dockyard_auth_server.host
    image = make_image(seed=repo_name)
    push(image, dockyard_auth_server.url, repo_name, "v1", auth=TEST_USER)
    assert "authentication" in cli("tag", "list", "-r", reg, repo_name).failed(1).stderr
    cli("tag", "list", "-r", reg, repo_name, "-u", TEST_USER[0], "--password-stdin", input="wrong\n").failed(1)
    tags = cli("tag", "list", "-r", reg, repo_name, "-u", TEST_USER[0], "--password-stdin", "-o", "json",
               input=TEST_USER[1] + "\n").ok().json()
    assert [t["name"] for t in tags] == ["v1"]
    cli("tag", "list", "-r", reg, repo_name, "-u", TEST_USER[0]).failed(2)
    cli("tag", "list", "-r", reg, repo_name, "--password-stdin", input="x").failed(2)


def test_repository_arguments_may_name_their_registry(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str
) -> None:
    """``HOST/REPO`` works without --registry, as references do; a tag there is a usage error."""
    image = make_image(seed=repo_name)
    push(image, dockyard_server.url, repo_name, "v1")
    full = f"{dockyard_server.host}/{repo_name}"
    assert [t["name"] for t in cli("tag", "list", full, "-o", "json").ok().json()] == ["v1"]
    assert [m["digest"] for m in cli("manifest", "list", full, "-o", "json").ok().json()] == [image.digest]
    assert cli("repo", "show", full, "-o", "json").ok().json()["name"] == repo_name
    assert "without :TAG" in cli("tag", "list", f"{full}:v1").failed(2).stderr
