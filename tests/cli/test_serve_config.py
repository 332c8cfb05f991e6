"""``dockyard serve --config FILE`` and ``DOCKYARD_<KEY>``: precedence (flag > environment > file > default), strict
file keys, typed values, ``--print-config`` with secrets masked, and a server really started from a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import typer
from typer.testing import CliRunner

from dockyard.cli.serve_config import ENV_PREFIX, load_config, print_effective
from tests.cli.conftest import Cli
from tests.support.servers import free_port, subprocess_env


def _settings(output: str) -> dict[str, str]:
    """``key = value  # origin`` lines of --print-config as ``{key: "value  # origin"}``."""
    pairs = (line.split(" = ", 1) for line in output.splitlines() if " = " in line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_flags_win_over_the_environment_which_wins_over_the_file(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text('port = 1111\nhost = "127.0.0.9"\nupload_ttl = 60\nanonymous_pull = true\n'
                      'max_connections = 50\n')
    env = {"DOCKYARD_PORT": "2222", "DOCKYARD_MAX_CONNECTIONS": "70", "DOCKYARD_WORKERS": "3"}
    shown = _settings(cli("serve", "--config", str(config), "--max-connections", "90", "--print-config",
                          env=env).ok().stdout)
    assert shown["max_connections"] == "90  # flag"
    assert shown["port"] == "2222  # environment DOCKYARD_PORT"
    assert shown["workers"] == "3  # environment DOCKYARD_WORKERS"
    assert shown["host"] == '"127.0.0.9"  # config file'
    assert shown["upload_ttl"] == "60.0  # config file"
    assert shown["anonymous_pull"] == "true  # config file"
    assert shown["body_timeout"] == "60.0  # default"
    # An environment variable turns a file's boolean off; DOCKYARD_CONFIG names the file.
    shown = _settings(cli("serve", "--print-config",
                          env={"DOCKYARD_CONFIG": str(config), "DOCKYARD_ANONYMOUS_PULL": "false"}).ok().stdout)
    assert shown["anonymous_pull"] == "false  # environment DOCKYARD_ANONYMOUS_PULL"
    assert shown["port"] == "1111  # config file"


def test_every_serve_flag_has_a_key(cli: Cli) -> None:
    """The keys come from the command's parameters: each flag of ``serve --help`` is a key of --print-config."""
    from typer.main import get_command

    from dockyard.cli.main import app

    serve = get_command(app).commands["serve"]  # type: ignore[attr-defined]
    flags = {p.name for p in serve.params if p.name not in ("config_file", "print_config")}
    output = cli("serve", "--print-config").ok().stdout
    listed = {line.split(" = ")[0] for line in output.splitlines() if " = " in line} | {
        line.split()[1] for line in output.splitlines() if line.endswith(" is not set")}
    assert listed == flags
    assert {"tls_cert", "tls_key", "public_url", "port"} <= listed


def test_an_unknown_key_in_the_file_is_an_error_naming_it(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text("port = 5000\ntls_certificate = \"/etc/cert.pem\"\n")
    result = cli("serve", "--config", str(config)).failed(2)
    assert "unknown key 'tls_certificate'" in result.stderr and str(config) in result.stderr
    # The file's own chooser keys are not settings either.
    config.write_text("print_config = true\n")
    assert "unknown key 'print_config'" in cli("serve", "--config", str(config)).failed(2).stderr


def test_environment_variables_that_name_no_key_are_left_alone(cli: Cli) -> None:
    """Other commands read DOCKYARD_REGISTRY and friends; serve uses only the variables naming its keys."""
    env = {"DOCKYARD_REGISTRY": "https://example.test", "DOCKYARD_NOT_A_SETTING": "1"}
    assert "port = 5000  # default" in cli("serve", "--print-config", env=env).ok().stdout


def test_values_are_typed_and_checked_like_flags(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text('port = "5000"\n')
    assert "key 'port' must be an integer, not '5000'" in cli("serve", "--config", str(config)).failed(2).stderr
    config.write_text("anonymous_pull = 1\n")
    assert "key 'anonymous_pull' must be true or false" in cli("serve", "--config", str(config)).failed(2).stderr
    config.write_text("port = 70000\n")
    assert "--port" in cli("serve", "--config", str(config), "--print-config").failed(2).stderr
    config.write_text("port = \n")
    assert "is not valid TOML" in cli("serve", "--config", str(config)).failed(2).stderr
    assert "cannot read config file" in cli("serve", "--config", str(tmp_path / "missing.toml")).failed(2).stderr


def test_print_config_masks_keys_naming_a_password_secret_or_credentials(tmp_path: Path) -> None:
    """The same machinery on a command with secret-named flags (serve has none of its own yet)."""
    app = typer.Typer()

    @app.command(context_settings={"auto_envvar_prefix": ENV_PREFIX})
    def run(ctx: typer.Context,
            admin_password: str = typer.Option("", "--admin-password"),
            signing_secret: str | None = typer.Option(None, "--signing-secret"),
            storage_credentials: str = typer.Option("", "--storage-credentials"),
            htpasswd: str = typer.Option("", "--htpasswd"),
            config_file: Path | None = typer.Option(None, "--config", is_eager=True, callback=load_config),
            print_config: bool = typer.Option(False, "--print-config")) -> None:
        print_effective(ctx)

    config = tmp_path / "c.toml"
    config.write_text('storage_credentials = "account:key"\nhtpasswd = "/etc/dockyard/htpasswd"\n')
    result = CliRunner().invoke(app, ["--config", str(config), "--admin-password", "hunter2"],
                                env={"DOCKYARD_SIGNING_SECRET": "s3cr3t"})
    assert result.exit_code == 0, result.output
    shown = _settings(result.output)
    assert shown["admin_password"] == '"********"  # flag'
    assert shown["signing_secret"] == '"********"  # environment DOCKYARD_SIGNING_SECRET'
    assert shown["storage_credentials"] == '"********"  # config file'
    assert shown["htpasswd"] == '"/etc/dockyard/htpasswd"  # config file'
    for secret in ("hunter2", "s3cr3t", "account:key"):
        assert secret not in result.output


def test_a_server_starts_with_the_settings_of_its_file(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "dockyard.toml"
    config.write_text(f'host = "127.0.0.1"\nport = {port}\ndata_dir = "{tmp_path / "data"}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "serve", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env())
    try:
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(2))
        assert f"serving http://127.0.0.1:{port} (data: {tmp_path / 'data'}" in banner
        assert httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_metadata_url_comes_from_the_environment_with_its_password_masked(cli: Cli) -> None:
    env = {"DOCKYARD_METADATA_URL": "postgresql://dockyard:hunter2@db.internal:5432/registry"}
    output = cli("serve", "--print-config", env=env).ok().stdout
    shown = _settings(output)
    assert shown["metadata_url"] == (
        '"postgresql://dockyard:********@db.internal:5432/registry"  # environment DOCKYARD_METADATA_URL'
    )
    assert "hunter2" not in output
