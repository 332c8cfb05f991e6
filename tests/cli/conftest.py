"""Running the real ``dockyard`` console script against real registries."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    """The environment of CLI runs: its own docker config directory, no registry defaults, no proxies."""
    env = subprocess_env()
    for name in ("DOCKYARD_REGISTRY", "AZURE_CONTAINERREGISTRY_ENDPOINT"):
        env.pop(name, None)
    config = tmp_path / "docker-config"
    config.mkdir()
    env["DOCKER_CONFIG"] = str(config)
    return env


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Cli]:
    """``cli(*args, input=None, env=None, cwd=None)`` runs the ``dockyard`` console script."""
    program = shutil.which("dockyard")
    assert program, "the dockyard console script is not installed (pip install -e .)"

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Result:
        merged = {**cli_env, **(env or {})}
        proc = subprocess.run(
            [program, *args], input=input, capture_output=True, text=True, env=merged, cwd=cwd or tmp_path,
            timeout=240, stdin=None if input is not None else subprocess.DEVNULL,
        )
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr)

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
