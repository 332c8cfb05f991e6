"""``dockyard token`` and ``dockyard scope-map``: what they print, store and refuse (on a data directory)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dockyard.server.storage.metadata import SqliteMetadataStore
from tests.cli.conftest import Cli, run_script
from tests.cli.test_help_examples import DATA_DIR_GROUPS, help_examples


def run(cli: Cli, data: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return cli(*args, "--data-dir", str(data), input=input)


def test_create_prints_the_password_once_and_stores_its_hash(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = run(cli, data, "token", "create", "ci", "--scope", "team/*:content/read,content/write",
                  "--scope", "team/*:metadata/read", "--expires-in", "30", "-o", "json").ok().json()
    assert set(created) == {"name", "password"} and created["name"] == "ci"
    store = SqliteMetadataStore(data)
    try:
        record = store.token("ci")
    finally:
        store.close()
    assert record is not None and record.secret_hash == hashlib.sha256(created["password"].encode()).hexdigest()
    assert record.rules == (("team/*", ("content/read", "content/write", "metadata/read")),)
    shown = run(cli, data, "token", "show", "ci", "-o", "json").ok().json()
    assert shown["status"] == "enabled" and shown["scopes"] == ["team/*:content/read,content/write,metadata/read"]
    assert shown["expires"] and created["password"] not in str(shown)
    table = run(cli, data, "token", "create", "ci2", "--scope-map", "_repositories_push").ok().stdout
    assert "shown only now" in table


def test_update_disable_enable_delete(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(cli, data, "token", "create", "ci", "--scope", "app:content/read").ok()
    updated = run(cli, data, "token", "update", "ci", "--scope", "app:content/read,content/delete", "-o",
                  "json").ok().json()
    assert updated["scopes"] == ["app:content/read,content/delete"]
    assert run(cli, data, "token", "disable", "ci", "-o", "json").ok().json()["status"] == "disabled"
    assert run(cli, data, "token", "enable", "ci", "-o", "json").ok().json()["status"] == "enabled"
    assert [t["name"] for t in run(cli, data, "token", "list", "-o", "json").ok().json()] == ["ci"]
    run(cli, data, "token", "delete", "ci").ok()
    assert run(cli, data, "token", "list", "-o", "json").ok().json() == []
    assert "no token 'ci'" in run(cli, data, "token", "delete", "ci").failed(1).stderr


def test_scope_maps(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    maps = {m["name"]: m for m in run(cli, data, "scope-map", "list", "-o", "json").ok().json()}
    assert maps["_repositories_pull"]["scopes"] == ["*:content/read"]
    assert maps["_repositories_push"]["scopes"] == ["*:content/read,content/write"]
    assert maps["_repositories_admin"]["scopes"] == [
        "*:content/read,content/write,content/delete,metadata/read,metadata/write"]
    run(cli, data, "scope-map", "create", "readers", "--scope", "team/*:content/read",
        "--description", "team readers").ok()
    run(cli, data, "token", "create", "r1", "--scope-map", "readers").ok()
    run(cli, data, "scope-map", "update", "readers", "--scope", "team/*:content/read,metadata/read").ok()
    shown = run(cli, data, "scope-map", "show", "readers", "-o", "json").ok().json()
    assert shown == {"name": "readers", "description": "team readers", "built_in": False,
                     "scopes": ["team/*:content/read,metadata/read"]}
    assert "used by token(s) r1" in run(cli, data, "scope-map", "delete", "readers").failed(1).stderr
    run(cli, data, "token", "delete", "r1").ok()
    run(cli, data, "scope-map", "delete", "readers").ok()
    assert "built in" in run(cli, data, "scope-map", "delete", "_repositories_pull").failed(1).stderr


def test_bad_input_is_one_line(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert "invalid action" in run(cli, data, "token", "create", "t", "--scope", "app:content/rd").failed(2).stderr
    assert "invalid repository pattern" in run(cli, data, "token", "create", "t", "--scope",
                                               "*:content/read").failed(2).stderr
    assert "invalid repository pattern" in run(cli, data, "token", "create", "t", "--scope",
                                               "Bad Name:content/read").failed(2).stderr
    assert "either --scope" in run(cli, data, "token", "create", "t").failed(1).stderr
    assert "no scope map 'nope'" in run(cli, data, "token", "create", "t", "--scope-map", "nope").failed(1).stderr
    assert "invalid token name" in run(cli, data, "token", "create", "a:b", "--scope",
                                       "app:content/read").failed(1).stderr
    run(cli, data, "token", "create", "t", "--scope", "app:content/read").ok()
    assert "already exists" in run(cli, data, "token", "create", "t", "--scope", "app:content/read").failed(1).stderr


#: The ``--help`` examples of the data-directory commands, in an order in which they all run.
EXAMPLE_ORDER = [
    "user add", "user list", "user delete",
    "scope-map list", "scope-map show", "scope-map create", "scope-map update",
    "token create", "token list", "token show", "token update", "token disable", "token enable", "token delete",
    "scope-map delete", "db upgrade",
]


def test_help_examples_run(cli_env: dict[str, str], tmp_path: Path) -> None:
    examples = help_examples()
    assert set(EXAMPLE_ORDER) == {name for name in examples if name.split()[0] in DATA_DIR_GROUPS}
    env = {**cli_env, "XDG_DATA_HOME": str(tmp_path / "xdg"), "PASSWORD": "example-password"}
    for name in EXAMPLE_ORDER:
        assert examples[name], f"dockyard {name} has no example"
        for line in examples[name]:
            run_script(line, tmp_path, env)
    assert not (tmp_path / "xdg" / "dockyard" / "metadata.db").stat().st_mode & 0o077
