"""``dockyard user add | delete | list``: a bcrypt htpasswd file the server accepts, rewritten atomically."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt

from dockyard.server.auth.htpasswd import read_htpasswd
from tests.cli.conftest import Cli


def test_add_creates_a_private_file_the_server_reads(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    cli("user", "add", "alice", "--htpasswd", str(path), "--password-stdin", input="pw-alice\n").ok()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = read_htpasswd(path)
    assert bcrypt.checkpw(b"pw-alice", users["alice"].hashed)


def test_add_replaces_a_user_and_keeps_other_lines(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "auth").mkdir()
    path = tmp_path / "auth" / "htpasswd"
    cli("user", "add", "alice", "--htpasswd", str(path), "--password-stdin", input="one\n").ok()
    path.write_text(path.read_text() + "# team accounts\n\n")
    cli("user", "add", "bob", "--htpasswd", str(path), "--password-stdin", input="two\n").ok()
    path.chmod(0o640)
    cli("user", "add", "alice", "--htpasswd", str(path), "--password-stdin", input="three\n").ok()
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "# team accounts", "", "bob"]
    users = read_htpasswd(path)
    assert bcrypt.checkpw(b"three", users["alice"].hashed) and bcrypt.checkpw(b"two", users["bob"].hashed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["htpasswd"]  # no temporary file left behind


def test_list_and_delete(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    for name in ("alice", "bob"):
        cli("user", "add", name, "--htpasswd", str(path), "--password-stdin", input="pw\n").ok()
    assert [u["name"] for u in cli("user", "list", "--htpasswd", str(path), "-o", "json").ok().json()] == [
        "alice", "bob"]
    cli("user", "delete", "alice", "--htpasswd", str(path)).ok()
    assert list(read_htpasswd(path)) == ["bob"]
    assert "no user 'alice'" in cli("user", "delete", "alice", "--htpasswd", str(path)).failed().stderr


def test_bad_input_is_one_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    assert "invalid user name" in cli("user", "add", "a:b", "--htpasswd", str(path), "--password-stdin",
                                      input="pw\n").failed().stderr
    assert "standard input is empty" in cli("user", "add", "a", "--htpasswd", str(path), "--password-stdin",
                                            input="").failed().stderr
    assert "--password-stdin" in cli("user", "add", "a", "--htpasswd", str(path)).failed().stderr
    path.write_text("carol:$apr1$abc$defghijklmnopqrstuvwx\n")
    err = cli("user", "add", "dave", "--htpasswd", str(path), "--password-stdin", input="pw\n").failed().stderr
    assert "line 1" in err and "MD5" in err
    assert path.read_text() == "carol:$apr1$abc$defghijklmnopqrstuvwx\n"  # an unusable file is left alone
