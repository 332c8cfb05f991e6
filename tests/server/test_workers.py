"""``dockyard serve --workers N``: several processes on one data directory lose no update; connections opened
at once are spread over the workers (one ``SO_REUSEPORT`` socket each), also after a worker was restarted."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.images import make_image, push
from tests.support.servers import DockyardServer
from tests.support.sockets import established

THREADS = 8
PUSHES_PER_THREAD = 6


def _push_many(url: str, worker: int) -> dict[str, str]:
    """Push images under this thread's own tags and lock one tag; each call opens fresh connections, so the
    kernel spreads them over the server's processes."""
    pushed: dict[str, str] = {}
    for i in range(PUSHES_PER_THREAD):
        with httpx.Client(timeout=60.0) as http:
            tag = f"w{worker}-{i}"
            pushed[tag] = push(make_image(layers=1, layer_size=512), url, "shared/repo", tag, client=http)
            if i == 0:
                locked = http.patch(f"{url}/acr/v1/shared/repo/_tags/{tag}", json={"deleteEnabled": False})
                assert locked.status_code == 200, locked.text
    return pushed


def _worker_pids(pid: int) -> list[int]:
    """The uvicorn worker processes (spawned children) of the server process ``pid``."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
        except FileNotFoundError:
            continue
    return workers


def _worker_processes(pid: int) -> int:
    """How many uvicorn worker processes (spawned children) the server process ``pid`` runs."""
    return len(_worker_pids(pid))


def _accepted_by(worker_pids: list[int], port: int) -> dict[int, int]:
    """How many established connections to ``port`` each worker holds (its accepted sockets, from /proc)."""
    return {pid: established(pid, local_port=port) for pid in worker_pids}


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


BURST = 16


def _burst(port: int, workers: list[int]) -> dict[int, int]:
    """Open :data:`BURST` connections at once, make one request on each (all answered), and say how many each
    worker accepted."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(BURST)]
    try:
        for conn in connections:
            conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
        for conn in connections:
            assert conn.recv(65536).startswith(b"HTTP/1.1 200 "), "a connection was not served"
        _wait_for(lambda: sum(_accepted_by(workers, port).values()) == BURST, 5, "every connection accepted")
        return _accepted_by(workers, port)
    finally:
        for conn in connections:
            conn.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balances connections on Linux")
def test_connections_opened_at_once_are_spread_over_the_workers_also_after_restarts(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "srv", "--workers", "2") as server:
        workers = _worker_pids(server.proc.pid)
        assert len(workers) == 2
        counts = _burst(server.port, workers)
        # The kernel hashes each connection to one worker's socket: both get several (all 16 on one worker, or
        # 15 and 1, has a chance of 1 in 1900). One shared socket gives them all to the first worker to wake.
        assert min(counts.values()) >= 2, counts

        # A killed worker is replaced on its own socket: connections hashed there are served, by the new worker.
        os.kill(workers[1], signal.SIGKILL)
        _wait_for(lambda: len(set(_worker_pids(server.proc.pid)) - set(workers)) == 1, 15, "a worker restarted")
        replaced = _worker_pids(server.proc.pid)
        assert workers[0] in replaced
        counts = _burst(server.port, replaced)
        assert min(counts.values()) >= 2, counts

        # SIGHUP (without TLS) replaces every worker, each on its predecessor's socket.
        server.proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: not set(_worker_pids(server.proc.pid)) & set(replaced)
                  and len(_worker_pids(server.proc.pid)) == 2, 30, "both workers replaced")
        counts = _burst(server.port, _worker_pids(server.proc.pid))
        assert min(counts.values()) >= 2, counts


def test_concurrent_pushes_across_workers_lose_nothing(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "srv", "--workers", "2") as server:
        # Without this the test would also pass against a single process.
        assert _worker_processes(server.proc.pid) == 2
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda w: _push_many(server.url, w), range(THREADS)))
        expected = {tag: digest for result in results for tag, digest in result.items()}
        with httpx.Client(base_url=server.url, timeout=60.0) as http:
            tags = http.get("/v2/shared/repo/tags/list").json()["tags"]
            assert sorted(tags) == sorted(expected)
            for tag, digest in expected.items():
                head = http.head(f"/v2/shared/repo/manifests/{tag}")
                assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest
            repo = http.get("/acr/v1/shared/repo").json()
            assert repo["tagCount"] == len(expected) and repo["manifestCount"] == len(set(expected.values()))
            for worker in range(THREADS):
                tag = http.get(f"/acr/v1/shared/repo/_tags/w{worker}-0").json()["tag"]
                assert tag["changeableAttributes"]["deleteEnabled"] is False
                assert http.delete(f"/v2/shared/repo/manifests/w{worker}-0").status_code == 405
