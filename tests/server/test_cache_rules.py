"""Cache rules: parsing, Docker Hub's conventions, matching, and ``dockyard serve``'s one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from dockyard.server.cache.rules import CacheRuleError, CacheRules, parse_rule
from tests.support.servers import subprocess_env


def test_docker_hub_prefix_rule_maps_names_to_library() -> None:
    rule = parse_rule("hub/*=docker.io/library/*")
    assert rule.endpoint == "https://registry-1.docker.io"
    assert rule.upstream_name("hub/alpine") == "library/alpine"
    assert rule.upstream_name("hub") is None and rule.upstream_name("other/alpine") is None
    whole = parse_rule("dh/*=docker.io/*")
    assert whole.upstream_name("dh/alpine") == "library/alpine"
    assert whole.upstream_name("dh/bitnami/redis") == "bitnami/redis"
    single = parse_rule("alpine=docker.io/alpine")
    assert single.repository == "library/alpine" and single.upstream_name("alpine") == "library/alpine"


def test_source_scheme_host_port_and_options() -> None:
    rule = parse_rule("team/*=http://127.0.0.1:5001/base/*,ttl=90s,allow_push=true,credentials=127.0.0.1:5001")
    assert (rule.endpoint, rule.repository, rule.ttl, rule.allow_push) == ("http://127.0.0.1:5001", "base", 90.0,
                                                                           True)
    assert rule.upstream_name("team/app/web") == "base/app/web"
    assert parse_rule("x/*=registry.example.com:8443/*").endpoint == "https://registry.example.com:8443"
    assert parse_rule('{"target": "x", "source": "ghcr.io/org/x", "ttl": "2h"}').ttl == 7200.0
    assert parse_rule("x=ghcr.io/org/x").ttl == 3600.0


def test_the_most_specific_rule_wins() -> None:
    rules = CacheRules([parse_rule("*=upstream.example/*"), parse_rule("hub/*=docker.io/*"),
                        parse_rule("hub/special=quay.io/org/special")])
    assert rules.match("hub/special")[0].target == "hub/special"  # type: ignore[index]
    assert rules.match("hub/alpine") == (rules.rules[1], "library/alpine")
    assert rules.match("anything/else")[1] == "anything/else"  # type: ignore[index]
    assert not CacheRules([]) and CacheRules([]).match("x") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("hub/*", "expected TARGET=SOURCE"),
        ("hub/*=docker.io/library/alpine", "prefix target"),
        ("alpine=docker.io/library/*", "prefix target"),
        ("hub/*=ftp://host/*", "scheme"),
        ("hub/*=http://docker.io/*", "https only"),
        ("hub/*=docker.io/*,ttl=soon", "ttl"),
        ("hub/*=docker.io/*,allow_push=maybe", "allow_push"),
        ("hub/*=docker.io/*,colour=red", "unknown key"),
        ("hub/*=docker.io/*,username=bob", "go together"),
        ("Bad Name/*=docker.io/*", "not a repository name"),
        ("hub/*=bad host/*", "not a registry"),
        ("hub/*=docker.io", "must name a repository"),
        ("x/*=http://registry.example.com/*,credentials=registry.example.com", "clear text"),
    ],
)
def test_unusable_rules_are_refused_with_a_message_naming_them(text: str, fragment: str) -> None:
    with pytest.raises(CacheRuleError, match=fragment):
        parse_rule(text)


def test_two_rules_for_one_target_are_refused() -> None:
    with pytest.raises(CacheRuleError, match="same target"):
        CacheRules([parse_rule("hub/*=docker.io/*"), parse_rule("hub/*=quay.io/*")])


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", "serve", "--port", "0", *args], capture_output=True,
                          text=True, timeout=60, env=env or subprocess_env())


def test_serve_refuses_a_bad_rule_in_one_line(tmp_path: Path) -> None:
    bad = _serve("--data-dir", str(tmp_path), "--cache-rule", "hub/*=docker.io/library/alpine")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "cache rule hub/*=docker.io/library/alpine" in bad.stderr
    config = tmp_path / "docker"
    config.mkdir()
    env = {**subprocess_env(), "DOCKER_CONFIG": str(config)}
    missing = _serve("--data-dir", str(tmp_path), "--cache-rule", "hub/*=docker.io/*,credentials=docker.io", env=env)
    assert missing.returncode == 2 and "no credentials for 'docker.io'" in missing.stderr
    no_file = _serve("--data-dir", str(tmp_path), "--cache-rule",
                     f"hub/*=docker.io/*,username=bob,password_file={tmp_path / 'nope'}")
    assert no_file.returncode == 2 and "cannot read password_file" in no_file.stderr


def test_config_file_cache_rules_tables(tmp_path: Path) -> None:
    password = tmp_path / "hub-password"
    password.write_text("secret\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[[cache_rules]]\n"
        'target = "hub/*"\nsource = "docker.io/library/*"\nttl = "30m"\n'
        f'username = "bob"\npassword_file = "{password}"\n'
        "[[cache_rules]]\n"
        'target = "ghcr/*"\nsource = "ghcr.io/*"\nallow_push = true\n'
    )
    shown = _serve("--config", str(config), "--print-config")
    assert shown.returncode == 0, shown.stderr
    assert "hub/*" in shown.stdout and "ghcr/*" in shown.stdout
    config.write_text('[[cache_rules]]\ntarget = "hub/*"\nsource = "docker.io/library/*"\nttl = "1 hour"\n')
    bad = _serve("--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert bad.returncode == 2 and "cache rule hub/*=docker.io/library/*: ttl" in bad.stderr
    config.write_text('cache_rules = "hub/*=docker.io/*"\n')
    wrong = _serve("--config", str(config))
    assert wrong.returncode == 2 and "cache_rules must be an array of tables" in wrong.stderr


def test_print_config_shows_cache_rules_as_tables_that_read_back(tmp_path: Path) -> None:
    password = tmp_path / "hub-password"
    password.write_text("secret\n")
    config = tmp_path / "config.toml"
    config.write_text(
        "[[cache_rules]]\n"
        f'target = "hub/*"\nsource = "docker.io/library/*"\nusername = "bob"\npassword_file = "{password}"\n'
        "allow_push = true\n"
    )
    first = _serve("--config", str(config), "--cache-rule", "mirror/*=http://127.0.0.1:5000/*,ttl=1h",
                   "--print-config")
    assert first.returncode == 0, first.stderr
    # The flag replaces the file's rules (a flag wins over the file, as for every key).
    assert tomllib.loads(first.stdout)["cache_rules"] == [
        {"target": "mirror/*", "source": "http://127.0.0.1:5000/*", "ttl": "1h"}
    ]
    second = _serve("--config", str(config), "--print-config")
    assert second.returncode == 0, second.stderr
    assert tomllib.loads(second.stdout)["cache_rules"] == [
        {"target": "hub/*", "source": "docker.io/library/*", "username": "bob", "password_file": str(password),
         "allow_push": True}
    ]
    # The printed configuration is a config file that gives the same configuration.
    printed = tmp_path / "printed.toml"
    printed.write_text(first.stdout)
    again = _serve("--config", str(printed), "--print-config")
    assert again.returncode == 0, again.stderr
    assert tomllib.loads(again.stdout) == tomllib.loads(first.stdout)
    assert _serve("--print-config").stdout.count("# cache_rules is not set") == 1
