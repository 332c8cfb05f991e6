"""What a user sees when something is wrong: one line naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

UNKNOWN_DIGEST = "sha256:" + "0" * 64


def test_unreachable_registry_says_so(cli: Cli) -> None:
    assert "cannot reach http://127.0.0.1:1:" in cli("repo", "list", "-r", "127.0.0.1:1").failed(1).stderr
    assert "cannot reach http://127.0.0.1:1:" in cli("tag", "list", "-r", "127.0.0.1:1", "some/repo").failed(1).stderr


def test_tls_to_a_plain_http_registry_suggests_http(cli: Cli, dockyard_server: DockyardServer) -> None:
    message = cli("repo", "list", "-r", f"https://{dockyard_server.host}").failed(1).stderr
    assert f"cannot reach https://{dockyard_server.host}" in message and "http://HOST:PORT" in message


def test_no_registry_for_every_kind_of_command(cli: Cli) -> None:
    for args in (("repo", "list"), ("tag", "show", "a/b:v1"), ("manifest", "get", "a/b:v1"), ("pull", "a/b:v1"),
                 ("purge", "--filter", "a:.*", "--ago", "1d")):
        assert "no registry given" in cli(*args).failed(2).stderr


def test_unknown_tag_and_digest_in_a_known_repository(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str
) -> None:
    reg = dockyard_server.host
    push(make_image(seed=repo_name), dockyard_server.url, repo_name, "v1")
    for args in (
        ("tag", "show", f"{repo_name}:nope"),
        ("tag", "delete", f"{repo_name}:nope"),
        ("tag", "update", f"{repo_name}:nope", "--delete-enabled", "false"),
        ("manifest", "show", f"{repo_name}@{UNKNOWN_DIGEST}"),
        ("manifest", "get", f"{repo_name}@{UNKNOWN_DIGEST}"),
        ("manifest", "delete", f"{repo_name}@{UNKNOWN_DIGEST}"),
        ("manifest", "update", f"{repo_name}@{UNKNOWN_DIGEST}", "--write-enabled", "false"),
        ("manifest", "referrers", f"{repo_name}@{UNKNOWN_DIGEST}"),
        ("pull", f"{repo_name}@{UNKNOWN_DIGEST}"),
    ):
        assert "not found" in cli(*args, "-r", reg).failed(1).stderr, args
    assert [t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json").ok().json()] == ["v1"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("tag", "show", "Upper/Case:v1"), "invalid repository name"),
        (("manifest", "show", "a/b@sha256:abc"), "invalid sha256 digest"),
        (("manifest", "show", "a/b:bad tag"), "invalid"),
        (("push", "a/b@" + UNKNOWN_DIGEST, "f.txt"), "tag"),
        (("copy", "a/b:v1", "oci:"), "oci:DIRECTORY"),
    ],
)
def test_malformed_references(
    cli: Cli, dockyard_server: DockyardServer, args: tuple[str, ...], words: str
) -> None:
    assert words in cli(*args, "-r", dockyard_server.host).failed(2).stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--filter", "app:[", "--ago", "1d"), "invalid tag regular expression"),
        (("--filter", "(app:.*", "--ago", "1d"), "bad regular expression"),
        (("--filter", "app[:.*", "--ago", "1d"), "bad regular expression"),
        (("--filter", "app:.*", "--exclude", "(", "--ago", "1d"), "invalid --exclude regular expression"),
        (("--filter", "app:.*", "--ago", "1x"), "invalid duration '1x'"),
        (("--filter", "app:.*", "--ago", "-1d"), "invalid duration"),
        (("--filter", "app:.*", "--ago", "d"), "invalid duration"),
    ],
)
def test_purge_filter_and_duration_errors(
    cli: Cli, dockyard_server: DockyardServer, args: tuple[str, ...], words: str
) -> None:
    assert words in cli("purge", "-r", dockyard_server.host, *args).failed(2).stderr


def test_wrong_credentials_name_the_way_out(cli: Cli, dockyard_auth_server: DockyardServer) -> None:
    from tests.conftest import TEST_USER

    reg = dockyard_auth_server.host
    anonymous = cli("repo", "list", "-r", reg).failed(1).stderr
    assert "authentication failed" in anonymous and "dockyard login" in anonymous
    wrong = cli("repo", "list", "-r", reg, "-u", TEST_USER[0], "--password-stdin", input="wrong\n").failed(1)
    assert "authentication failed" in wrong.stderr
