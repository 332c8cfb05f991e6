"""Running the ``dockyard`` console script against real registries: in this process (its entry point,
:func:`dockyard.cli.main.main`, with its own argv, environment, working directory and standard streams), or as a
real process with ``DOCKYARD_TEST_CLI=subprocess``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockyard.cli.main import main
from tests.support.servers import subprocess_env


@dataclass
class Result:
    """A finished ``dockyard`` run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def ok(self) -> Result:
        assert self.returncode == 0, f"dockyard {' '.join(self.args)} exited {self.returncode}:\n{self.stderr}"
        return self

    def failed(self, code: int | None = None) -> Result:
        """Assert a clean failure: non-zero exit, one line on stderr, no traceback."""
        assert self.returncode != 0, f"dockyard {' '.join(self.args)} unexpectedly succeeded:\n{self.stdout}"
        if code is not None:
            assert self.returncode == code, (self.returncode, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self.stderr
        return self


Cli = Callable[..., Result]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of CLI runs: its own docker config and cache directories, no registry defaults, no
    proxies."""
    env = subprocess_env()
    for name in ("DOCKYARD_REGISTRY", "AZURE_CONTAINERREGISTRY_ENDPOINT"):
        env.pop(name, None)
    config = tmp_path / "docker-config"
    config.mkdir()
    env["DOCKER_CONFIG"] = str(config)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # dockyard --help's cache
    return env


@contextlib.contextmanager
def _environment(env: dict[str, str], cwd: Path) -> Iterator[None]:
    """Run with exactly ``env`` as ``os.environ`` and ``cwd`` as working directory; both restored after."""
    saved, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved)


def run_in_process(args: Sequence[str], input: str | None, env: dict[str, str], cwd: Path) -> Result:
    """``dockyard ARGS…`` through the console script's entry point in this process: what it prints on standard
    output and error, and the status it exits with. Standard input is ``input`` (else empty, like /dev/null)."""
    status: int = 0
    with _environment(env, cwd), CliRunner().isolation(input=input or "") as (stdout, stderr, _):
        try:
            main(list(args))
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                status = exc.code or 0
            else:  # sys.exit("message"), as the interpreter reports it
                print(exc.code, file=sys.stderr)
                status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = stdout.getvalue(), stderr.getvalue()
    return Result(list(args), status, out.decode(errors="replace"), err.decode(errors="replace"))


def run_subprocess(args: Sequence[str], input: str | None, env: dict[str, str], cwd: Path) -> Result:
    """``dockyard ARGS…`` as a process of the installed console script."""
    program = shutil.which("dockyard")
    assert program, "the dockyard console script is not installed (pip install -e .)"
    proc = subprocess.run(
        [program, *args], input=input, capture_output=True, text=True, env=env, cwd=cwd,
        timeout=240, stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(list(args), proc.returncode, proc.stdout, proc.stderr)


#: ``DOCKYARD_TEST_CLI=subprocess`` runs every ``cli(...)`` call as a real process (slower; same assertions).
_RUN = run_subprocess if os.environ.get("DOCKYARD_TEST_CLI") == "subprocess" else run_in_process


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Cli]:
    """``cli(*args, input=None, env=None, cwd=None)`` runs ``dockyard ARGS…`` (see :func:`run_in_process`)."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Result:
        return _RUN(args, input, {**cli_env, **(env or {})}, cwd or tmp_path)

    yield run


def repo_digests(cli: Cli, registry: str, repository: str) -> set[str]:
    """Every manifest digest of ``repository`` (via ``dockyard manifest list``)."""
    return {m["digest"] for m in cli("manifest", "list", "-r", registry, repository, "-o", "json").ok().json()}


def repo_tags(cli: Cli, registry: str, repository: str) -> set[str]:
    """Every tag of ``repository`` (via ``dockyard tag list``)."""
    return {t["name"] for t in cli("tag", "list", "-r", registry, repository, "-o", "json").ok().json()}




def run_script(script: str, cwd: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a shell snippet as a user would paste it (``bash -euo pipefail``); asserts success, no traceback."""
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc
