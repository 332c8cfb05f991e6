"""Running Debian's ``skopeo`` in tests: plain HTTP to loopback registries, nothing written under ``$HOME``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.peers import require_program
from tests.support.servers import subprocess_env


class Skopeo:
    """A ``skopeo`` with its own auth file, home and temp directory under ``workdir``.

    ``run(...)`` raises ``AssertionError`` with skopeo's output when it exits non-zero (``check=False`` to get the
    completed process instead). ``--insecure-policy`` is always passed, so the host's ``policy.json`` does not
    matter. TLS verification must be turned off per command (``--src-tls-verify=false`` …) for ``http://`` servers.
    """

    def __init__(self, workdir: Path) -> None:
        self.program = require_program("skopeo", "skopeo")
        self.workdir = Path(workdir)
        home = self.workdir / "home"
        (home / ".config" / "containers").mkdir(parents=True, exist_ok=True)
        self.tmpdir = self.workdir / "tmp"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.auth_file = self.workdir / "auth.json"
        self.auth_file.write_text('{"auths": {}}\n')
        self.env = subprocess_env()
        self.env.update(
            {
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_DATA_HOME": str(home / ".local" / "share"),
                "XDG_RUNTIME_DIR": str(home / "run"),
                "REGISTRY_AUTH_FILE": str(self.auth_file),
                "TMPDIR": str(self.tmpdir),
            }
        )
        (home / "run").mkdir(exist_ok=True)

    def run(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``skopeo --insecure-policy <args>``; returns the completed process."""
        proc = subprocess.run(
            [self.program, "--insecure-policy", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def copy(self, source: str, dest: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """``skopeo copy`` with TLS verification off on both sides (loopback HTTP registries)."""
        return self.run("copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, source, dest)

    def inspect(self, image: str, *extra: str) -> dict[str, Any]:
        """``skopeo inspect`` parsed as JSON (add ``--raw`` for the manifest itself)."""
        return json.loads(self.run("inspect", "--tls-verify=false", *extra, image).stdout)

    def list_tags(self, repository_ref: str) -> list[str]:
        """``skopeo list-tags docker://host/repo`` → the tag list."""
        return json.loads(self.run("list-tags", "--tls-verify=false", repository_ref).stdout)["Tags"]
