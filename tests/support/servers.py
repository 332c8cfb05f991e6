"""Real registry processes on loopback for tests and benchmarks: ``dockyard serve`` and CNCF distribution."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """Write an htpasswd file with bcrypt hashes (what ``htpasswd -B`` writes)."""
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}" for user, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class _Process:
    """A server subprocess with a log file, readiness polling and clean shutdown."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        #: Variables added to the inherited environment of the process (e.g. an object store's credentials).
        self.env: dict[str, str] = {}

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def verify(self) -> bool | ssl.SSLContext:
        """What the readiness check verifies the server's certificate with (``httpx``'s ``verify``)."""
        return True

    def start(self, timeout: float = 30.0) -> _Process:
        log = self.log_path.open("ab")
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                httpx.get(f"{self.url}/v2/", timeout=1.0, verify=self.verify())
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: the crash in crash-safety tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> _Process:
        self.stop()
        return self.start()

    def __enter__(self) -> _Process:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DockyardServer(_Process):
    """``dockyard serve`` on a free loopback port with its own data dir; ``extra`` adds flags."""

    name = "dockyard-serve"

    def __init__(self, workdir: Path, *extra: str, data_dir: Path | None = None, ca: Path | None = None) -> None:
        super().__init__(workdir)
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.extra = list(extra)
        #: The CA that signed ``--tls-cert`` (then the server speaks https).
        self.ca = ca

    @property
    def url(self) -> str:
        return f"{'https' if '--tls-cert' in self.extra else 'http'}://{self.host}"

    def verify(self) -> bool | ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True

    def command(self) -> list[str]:
        return [sys.executable, "-m", "dockyard", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir), *self.extra]


class DistributionServer(_Process):
    """Debian's ``docker-registry`` (CNCF distribution 2.8) with deletes on, optionally behind htpasswd."""

    name = "docker-registry"

    def __init__(self, workdir: Path, htpasswd: Path | None = None, program: str = "docker-registry") -> None:
        super().__init__(workdir)
        self.program = program
        self.htpasswd = htpasswd
        auth = ""
        if htpasswd is not None:
            auth = f"auth:\n  htpasswd:\n    realm: dockyard-test\n    path: {htpasswd}\n"
        (self.workdir / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'storage'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            + auth
        )

    def command(self) -> list[str]:
        return [self.program, "serve", str(self.workdir / "config.yml")]


def subprocess_env() -> dict[str, str]:
    """The environment for CLI subprocesses: no proxies, so loopback traffic stays on loopback."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def run_gc(data_dir: Path, *flags: str) -> str:
    """Run ``dockyard gc --data-dir DATA_DIR FLAGS…`` to completion; its standard output (it must succeed)."""
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(data_dir), *flags],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def blob_file(data_dir: Path, digest: str) -> Path:
    """Where ``dockyard serve`` keeps a blob: ``<data>/blobs/<algorithm>/<first two hex>/<hex>``."""
    algorithm, hex_digest = digest.split(":")
    return data_dir / "blobs" / algorithm / hex_digest[:2] / hex_digest
