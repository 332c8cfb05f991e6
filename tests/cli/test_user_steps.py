"""What a new user steps on: options and the environment, errors that name their subject, pull of an image,
push without files, sizes that say what they count, help that reads like docker's, version and completion,
plain HTTP with credentials, TLS options, and Ctrl-C in the middle of a push."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import TEST_USER
from tests.support.forward_proxy import ForwardProxy
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer, free_port
from tests.support.tls import TLSRelay

LOGIN = ("-u", TEST_USER[0], "--password-stdin")


# -- 1. the command line wins over the environment ------------------------------------------------------------


def test_registry_before_the_command_wins_over_the_environment(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str
) -> None:
    push(make_image(seed=repo_name), dockyard_server.url, repo_name, "v1")
    elsewhere = {"DOCKYARD_REGISTRY": f"127.0.0.1:{free_port()}"}  # nobody listens there
    cli("-r", dockyard_server.host, "tag", "update", f"{repo_name}:v1", "--write-enabled", "false", env=elsewhere).ok()
    shown = cli("-r", dockyard_server.host, "-o", "json", "tag", "show", f"{repo_name}:v1", env=elsewhere).ok().json()
    assert shown["can_write"] is False
    # After the command name too, and the environment still applies when nothing is given.
    cli("tag", "update", "-r", dockyard_server.host, f"{repo_name}:v1", "--write-enabled", "true", env=elsewhere).ok()
    here = {"DOCKYARD_REGISTRY": dockyard_server.host}
    assert cli("tag", "show", f"{repo_name}:v1", "-o", "json", env=here).ok().json()["can_write"] is True


def test_output_format_before_the_command_applies(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    push(make_image(seed=repo_name), dockyard_server.url, repo_name, "v1")
    listed = cli("-o", "json", "-r", dockyard_server.host, "tag", "list", repo_name).ok().json()
    assert [t["name"] for t in listed] == ["v1"]


# -- 6. credentials over plain HTTP -----------------------------------------------------------------------------


def test_plain_http_credentials_refusal_names_the_cli_flag(
    cli: Cli, dockyard_auth_server: DockyardServer, repo_name: str
) -> None:
    # A registry on another host, reached over plain HTTP through a proxy (the traffic stays on loopback).
    with ForwardProxy(aliases={"registry.example": dockyard_auth_server.port}) as proxy:
        env = {"HTTP_PROXY": proxy.url, "NO_PROXY": ""}
        args = ("repo", "list", "-r", "http://registry.example", *LOGIN)
        refused = cli(*args, input=TEST_USER[1], env=env).failed(2)
        assert "--allow-insecure-credentials" in refused.stderr
        assert "allow_insecure_credentials=True" not in refused.stderr
        assert "http://registry.example" in refused.stderr
        cli(*args, "--allow-insecure-credentials", input=TEST_USER[1], env=env).ok()
        assert proxy.requests(), "the requests did not go through the proxy"


# -- 7. errors name their subject; a refused connection fails fast ----------------------------------------------


def test_errors_name_what_was_not_found_or_unreachable(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str
) -> None:
    push(make_image(seed=repo_name), dockyard_server.url, repo_name, "v1")
    reg = dockyard_server.host
    assert f"{repo_name}:nope" in cli("tag", "show", "-r", reg, f"{repo_name}:nope").failed(1).stderr
    assert f"{repo_name}-missing" in cli("repo", "show", "-r", reg, f"{repo_name}-missing").failed(1).stderr
    assert f"{repo_name}-missing" in cli("tag", "list", "-r", reg, f"{repo_name}-missing").failed(1).stderr
    closed = free_port()
    stderr = cli("repo", "list", "-r", f"127.0.0.1:{closed}").failed(1).stderr
    assert f"cannot reach http://127.0.0.1:{closed}" in stderr
    assert "refused" in stderr.lower()


# -- 8. pull of a container image; -o is the output format ------------------------------------------------------


def test_pull_of_a_container_image_points_at_copy(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    push(make_image(seed=repo_name), dockyard_server.url, repo_name, "v1")
    failed = cli("pull", "-r", dockyard_server.host, f"{repo_name}:v1", "--dir", "out").failed(1)
    assert "container image" in failed.stderr
    assert f"dockyard copy {repo_name}:v1 oci:DIR" in failed.stderr
    assert not (tmp_path / "out").exists()


def test_pull_output_option_is_the_format(cli: Cli, dockyard_server: DockyardServer, repo_name: str,
                                          tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    cli("push", "-r", dockyard_server.host, f"{repo_name}:v1", "a.txt").ok()
    work = tmp_path / "work"
    work.mkdir()
    pulled = cli("pull", "-r", dockyard_server.host, f"{repo_name}:v1", "-o", "json", cwd=work).ok().json()
    assert pulled["files"] == ["a.txt"]
    assert not (work / "json").exists()
    assert (work / "a.txt").read_text() == "a"
    cli("pull", "-r", dockyard_server.host, f"{repo_name}:v1", "-d", "there", cwd=work).ok()
    assert (work / "there" / "a.txt").read_text() == "a"


# -- 9. sizes say what they count; help reads like docker's -----------------------------------------------------


def test_sizes_are_labelled_by_what_they_count(
    cli: Cli, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a" * 1000)
    pushed = cli("push", "-r", dockyard_server.host, f"{repo_name}:v1", "a.txt", "-o", "json").ok().json()
    shown = cli("manifest", "show", "-r", dockyard_server.host, f"{repo_name}:v1", "-o", "json").ok().json()
    assert "size" not in pushed and "size" not in shown
    assert shown["total_size"] > 1000 > pushed["manifest_size"] > 0
    table = cli("manifest", "list", "-r", dockyard_server.host, repo_name).ok().stdout
    assert "TOTAL SIZE" in table


@pytest.mark.parametrize("command", [("push",), ("tag", "update"), ("pull",), ("manifest", "show"), ()])
def test_help_reads_like_docker(cli: Cli, command: tuple[str, ...]) -> None:
    text = cli(*command, "--help").ok().stdout
    assert "<bool>" not in text and "<str>" not in text and "<int>" not in text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage
    if command == ("push",):
        assert "REF [FILE...]" in usage
        assert "--registry" in text and "HOST" in text


# -- 10. push without files --------------------------------------------------------------------------------------


def test_push_without_files_needs_allow_empty(cli: Cli, dockyard_server: DockyardServer, repo_name: str) -> None:
    refused = cli("push", "-r", dockyard_server.host, f"{repo_name}:v1").failed(2)
    assert "--allow-empty" in refused.stderr
    assert cli("tag", "list", "-r", dockyard_server.host, repo_name).returncode == 1  # nothing was pushed
    cli("push", "-r", dockyard_server.host, f"{repo_name}:v1", "--allow-empty", "-a", "k=v").ok()


# -- 12. version, completion --------------------------------------------------------------------------------------


def test_version(cli: Cli) -> None:
    from importlib.metadata import version

    assert cli("--version").ok().stdout.strip() == f"dockyard {version('dockyard')}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_and_answers(cli: Cli, shell: str) -> None:
    script = cli("completion", shell).ok().stdout
    assert "_DOCKYARD_COMPLETE" in script
    if shell == "bash":
        answer = cli(env={"_DOCKYARD_COMPLETE": "complete_bash", "COMP_WORDS": "dockyard ta", "COMP_CWORD": "1"})
        assert answer.ok().stdout.split() == ["tag"]


# -- 5. TLS options -----------------------------------------------------------------------------------------------


def test_ca_file_and_insecure(cli: Cli, dockyard_server: DockyardServer, tmp_path: Path) -> None:
    with TLSRelay(dockyard_server.port, tmp_path / "tls") as relay:
        failed = cli("repo", "list", "-r", relay.url, env={"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": ""}).failed(1)
        assert "--ca-file" in failed.stderr
        cli("repo", "list", "-r", relay.url, "--ca-file", str(tmp_path / "tls" / "cert.pem")).ok()
        cli("--insecure", "repo", "list", "-r", relay.url).ok()
        # The environment's CA bundle, as azure-core reads it.
        cli("repo", "list", "-r", relay.url, env={"REQUESTS_CA_BUNDLE": str(tmp_path / "tls" / "cert.pem")}).ok()


def test_plain_http_for_any_host(cli: Cli, dockyard_server: DockyardServer) -> None:
    with ForwardProxy(aliases={"registry.example": dockyard_server.port}) as proxy:
        env = {"HTTP_PROXY": proxy.url, "NO_PROXY": ""}
        cli("repo", "list", "-r", "registry.example", "--plain-http", env=env).ok()
        assert all(seen.url.startswith("http://registry.example/") for seen in proxy.requests())


# -- 12. Ctrl-C during a push -------------------------------------------------------------------------------------


def _upload_sessions(server: DockyardServer) -> list[Path]:
    root = server.data_dir / "uploads"
    return [p for p in root.iterdir() if p.is_dir()] if root.exists() else []


def test_interrupted_push_cancels_its_upload_session(
    cli_env: dict[str, str], fresh_dockyard: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    fresh_dockyard.start()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    program = shutil.which("dockyard")
    assert program
    with ForwardProxy(upload_rate=256 * 1024) as proxy:
        env = {**cli_env, "HTTP_PROXY": proxy.url, "NO_PROXY": ""}
        proc = subprocess.Popen(
            [program, "push", "-r", fresh_dockyard.host, f"{repo_name}:v1", str(big)], env=env, cwd=tmp_path,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while proxy.body_bytes_read < 512 * 1024:  # the upload is under way
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the upload did not start"
                time.sleep(0.05)
            assert len(_upload_sessions(fresh_dockyard)) == 1
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert [line for line in stderr.splitlines() if line.strip()] == ["dockyard: interrupted"]
        assert proxy.requests("DELETE"), "the upload session was not cancelled"
    assert _upload_sessions(fresh_dockyard) == []
