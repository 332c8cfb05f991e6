"""``dockyard serve`` start-up: the port is checked, the banner appears only once the port is bound, a port in
use is a one-line error, and ``--access-log -`` writes to standard output."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import DockyardServer, subprocess_env


def serve(tmp_path: Path, *flags: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(tmp_path / "data"), *flags],
        capture_output=True, text=True, env=subprocess_env(), timeout=timeout, cwd=tmp_path,
    )


@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, port: str) -> None:
    result = serve(tmp_path, "--port", port)
    assert result.returncode == 2
    assert "--port" in result.stderr
    assert "serving" not in result.stdout


def test_a_port_in_use_is_a_one_line_error_without_a_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    assert "serving" not in result.stdout
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_a_port_held_by_a_reuse_port_group_is_in_use_for_workers(tmp_path: Path) -> None:
    """The workers' sockets share their port (SO_REUSEPORT): a port that another group of the same user listens
    on (say, a second server started by mistake) is refused, not joined."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    assert result.returncode == 1
    assert "serving" not in result.stdout
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_zero_serves_on_the_free_port_the_banner_names(tmp_path: Path, workers: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--workers", workers],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env(),
    )
    try:
        assert proc.stdout is not None
        # Start-up notices (auth on/off) may come first; the banner names the bound port.
        seen = [proc.stdout.readline() for _ in range(2)]
        match = re.search(r"serving http://127\.0\.0\.1:(\d+) ", "".join(seen))
        assert match, seen
        # The banner comes once the port is bound and listening: the first request is queued, not refused.
        response = httpx.get(f"http://127.0.0.1:{match.group(1)}/v2/", timeout=30)
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_access_log_dash_writes_to_standard_output(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "srv", "--access-log", "-") as server:
        assert httpx.get(f"{server.url}/v2/_catalog", timeout=10).status_code == 200
        deadline = time.monotonic() + 10
        while '"/v2/_catalog"' not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/v2/_catalog", "query": "", "status": 200} in lines
    assert not (server.workdir / "-").exists()
