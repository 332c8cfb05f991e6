"""What ``dockyard serve`` refuses and says at start-up about authentication: htpasswd lines it cannot use, an
unusable signing key, whether auth is on, and the ``--accept-any-aad-token`` warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.support.servers import DockyardServer, free_port, subprocess_env, write_htpasswd

GOOD = f"good:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}"


def serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``dockyard serve`` that is expected to refuse to start (it would otherwise be killed after 20 s)."""
    command = [sys.executable, "-m", "dockyard", "serve", "--port", str(free_port()),
               "--data-dir", str(tmp_path / "data"), *flags]
    return subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), timeout=20)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("md5:$apr1$Rk3T7Oy8$3j0f2ItW6ib6M7H3b2H8f/", "MD5"),
        ("sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
        ("des:rEfLUxEnHqm2Q", "crypt"),
        ("plain:secret", "not a password hash"),
        ("no-colon-here", "no ':'"),
        (":$2y$05$" + "a" * 53, "empty user name"),
        (GOOD.replace("good:", "cut:")[:-3], "malformed bcrypt"),
    ],
    ids=["md5", "sha1", "crypt", "plain", "no-colon", "empty-user", "cut-bcrypt"],  # stable: GOOD has a random salt
)
def test_htpasswd_lines_it_cannot_use_stop_the_start(tmp_path: Path, line: str, why: str) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"# users\n{GOOD}\n\n{line}\n")
    assert_one_line_error(serve(tmp_path, "--htpasswd", str(htpasswd)), str(htpasswd), "line 4", why)


def test_duplicate_users_stop_the_start(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{GOOD}\n{GOOD}\n")
    assert_one_line_error(serve(tmp_path, "--htpasswd", str(htpasswd)), "line 2", "already defined on line 1")


def test_an_htpasswd_file_without_users_starts_for_tokens(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("# nobody yet\n\n")
    with DockyardServer(tmp_path / "tokens-only", "--htpasswd", str(htpasswd)) as server:
        assert f"auth: on, 0 user(s) from {htpasswd}" in server.log()
        assert "only repository-scoped tokens can log in" in server.log()
        assert httpx.get(f"{server.url}/v2/").status_code == 401


def test_start_up_says_whether_auth_is_on(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"a": "1", "b": "2", "c": "3"})
    with DockyardServer(tmp_path / "on", "--htpasswd", str(htpasswd)) as server:
        assert f"auth: on, 3 user(s) from {htpasswd}" in server.log()
        assert "WARNING" not in server.log()
    with DockyardServer(tmp_path / "off") as server:
        assert "auth: off" in server.log()


def test_accept_any_aad_token_warns_loudly(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"a": "1"})
    with DockyardServer(tmp_path / "aad", "--htpasswd", str(htpasswd), "--accept-any-aad-token") as server:
        log = server.log()
    assert "WARNING: --accept-any-aad-token" in log and "full rights" in log
    shown = subprocess.run([sys.executable, "-m", "dockyard", "serve", "--help"], capture_output=True, text=True,
                           env={**subprocess_env(), "COLUMNS": "200", "NO_COLOR": "1"}, timeout=60)
    assert shown.returncode == 0
    assert "WARNING" in shown.stdout and "ANYONE" in shown.stdout


@pytest.mark.parametrize("content", [b"", b"\n", b"not a key at all\n", b"\x00" * 64])
def test_an_unusable_signing_key_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    key = tmp_path / "data" / "auth" / "token-secret"
    key.parent.mkdir(parents=True)
    key.write_bytes(content)
    assert_one_line_error(serve(tmp_path), str(key), "delete")


def test_an_unreadable_signing_key_is_a_one_line_error(tmp_path: Path) -> None:
    key = tmp_path / "data" / "auth" / "token-secret"
    key.mkdir(parents=True)  # unreadable as a file, whoever runs the test (root reads a chmod 000 file)
    assert_one_line_error(serve(tmp_path), str(key), "delete")


def test_a_new_signing_key_is_private_and_complete(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "fresh") as server:
        assert httpx.get(f"{server.url}/oauth2/token", auth=("x", "y")).status_code == 200
        key = server.data_dir / "auth" / "token-secret"
        assert key.stat().st_mode & 0o777 == 0o600
        assert len(key.read_bytes().strip()) == 64
        assert [p.name for p in key.parent.iterdir()] == ["token-secret"]


def test_a_signing_key_others_can_read_is_reported(tmp_path: Path) -> None:
    server = DockyardServer(tmp_path / "exposed")
    with server:
        pass
    key = server.data_dir / "auth" / "token-secret"
    key.chmod(0o644)
    server.start()
    with server:
        assert f"WARNING: the token signing key {key} is readable" in server.log()
