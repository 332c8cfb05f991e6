"""``dockyard login`` / ``logout``: Docker's config.json, then credentials from it on every command."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.cli.conftest import Cli
from tests.conftest import TEST_USER
from tests.support.images import make_image, push
from tests.support.servers import DistributionServer, DockyardServer


def config(cli_env: dict[str, str]) -> dict:
    path = Path(cli_env["DOCKER_CONFIG"]) / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_login_logout_token_registry(
    cli: Cli, cli_env: dict[str, str], dockyard_auth_server: DockyardServer, repo_name: str
) -> None:
    reg = dockyard_auth_server.host
    push(make_image(seed=repo_name, layers=1), dockyard_auth_server.url, repo_name, "v1", auth=TEST_USER)
    user = ("-u", TEST_USER[0], "--password-stdin")

    assert "authentication" in cli("login", reg, *user, input="wrong\n").failed(1).stderr
    assert config(cli_env).get("auths", {}) == {}
    cli("login", reg).failed(2)

    result = cli("login", reg, *user, input=TEST_USER[1] + "\n").ok()
    assert "Login Succeeded" in result.stderr
    auth = config(cli_env)["auths"][reg]["auth"]
    assert base64.b64decode(auth).decode() == f"{TEST_USER[0]}:{TEST_USER[1]}"

    # Every command now finds the credentials by itself.
    assert [t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json").ok().json()] == ["v1"]
    assert repo_name in cli("repo", "list", "-r", f"http://{reg}").ok().stdout

    assert cli("logout", reg, "-o", "json").ok().json() == {"registry": reg, "removed": True}
    assert reg not in config(cli_env).get("auths", {})
    cli("tag", "list", "-r", reg, repo_name).failed(1)
    assert "not logged in" in cli("logout", reg).failed(1).stderr


def test_login_basic_auth_registry(
    cli: Cli, cli_env: dict[str, str], distribution_auth_server: DistributionServer, repo_name: str
) -> None:
    reg = distribution_auth_server.host
    push(make_image(seed=repo_name, layers=1), distribution_auth_server.url, repo_name, "v1", auth=TEST_USER)
    cli("login", f"http://{reg}", "-u", TEST_USER[0], "--password-stdin", input="nope").failed(1)
    cli("login", f"http://{reg}", "-u", TEST_USER[0], "--password-stdin", input=TEST_USER[1]).ok()
    assert reg in config(cli_env)["auths"]
    assert [t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json").ok().json()] == ["v1"]
    cli("logout", f"http://{reg}").ok()
    cli("tag", "list", "-r", reg, repo_name).failed(1)


def test_credential_helper(
    cli: Cli, cli_env: dict[str, str], dockyard_auth_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    """A ``credHelpers`` entry in config.json: the CLI asks the helper program for the secret."""
    import os

    from tests.support import cred_helper

    reg = dockyard_auth_server.host
    push(make_image(seed=repo_name, layers=1), dockyard_auth_server.url, repo_name, "v1", auth=TEST_USER)
    bin_dir = tmp_path / "bin"
    cred_helper.install(bin_dir, "dockyardtest")
    store, log = tmp_path / "store.json", tmp_path / "helper.log"
    store.write_text(json.dumps({reg: {"Username": TEST_USER[0], "Secret": TEST_USER[1]}}))
    (Path(cli_env["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps({"credHelpers": {reg: "dockyardtest"}}))
    env = {"PATH": f"{bin_dir}{os.pathsep}{cli_env['PATH']}", cred_helper.STORE_ENV: str(store),
           cred_helper.LOG_ENV: str(log)}
    assert [t["name"] for t in cli("tag", "list", "-r", reg, repo_name, "-o", "json", env=env).ok().json()] == ["v1"]
    assert f"get {reg}" in log.read_text()


def test_login_without_password_stdin_off_a_terminal_is_one_line_error(
    cli: Cli, cli_env: dict[str, str], dockyard_auth_server: DockyardServer
) -> None:
    reg = dockyard_auth_server.host
    for stdin in (None, TEST_USER[1] + "\n"):  # /dev/null, then a pipe: neither is a terminal to prompt on
        message = cli("login", reg, "-u", TEST_USER[0], input=stdin).failed(2).stderr
        assert "--password-stdin" in message and "terminal" in message
    assert config(cli_env).get("auths", {}) == {}
    # Other commands never prompt: --username there always needs --password-stdin.
    assert "--password-stdin" in cli("repo", "list", "-r", reg, "-u", TEST_USER[0]).failed(2).stderr


def _run_on_terminal(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal as its controlling terminal; type ``answer`` at the password prompt.
    Returns the exit status and everything the terminal showed."""
    import os
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: exec right away, whatever happens
        try:
            os.execve(args[0], args, env)
        finally:
            os._exit(127)
    shown, answered = b"", False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 120)
            if not ready:
                break  # no output for two minutes: give up, the assertions below fail
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            # The space after the colon comes once echo is off and pending input flushed: answer only then.
            if not answered and b"Password: " in shown:
                os.write(fd, answer.encode() + b"\n")
                answered = True
    finally:
        if not answered:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_login_prompts_for_the_password_on_a_terminal(
    cli_env: dict[str, str], dockyard_auth_server: DockyardServer
) -> None:
    import shutil

    program = shutil.which("dockyard")
    assert program
    reg = dockyard_auth_server.host
    code, shown = _run_on_terminal([program, "login", reg, "-u", TEST_USER[0]], cli_env, "wrong-pass")
    assert code == 1 and "Password:" in shown and "wrong-pass" not in shown, shown
    assert config(cli_env).get("auths", {}) == {}

    code, shown = _run_on_terminal([program, "login", reg, "-u", TEST_USER[0]], cli_env, TEST_USER[1])
    assert code == 0 and "Login Succeeded" in shown, shown
    assert TEST_USER[1] not in shown  # typed without echo
    auth = config(cli_env)["auths"][reg]["auth"]
    assert base64.b64decode(auth).decode() == f"{TEST_USER[0]}:{TEST_USER[1]}"
