"""``dockyard serve --workers N``: several processes on one data directory lose no update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

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


def _worker_processes(pid: int) -> int:
    """How many uvicorn worker processes (spawned children) the server process ``pid`` runs."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    count = 0
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                count += 1
        except FileNotFoundError:
            continue
    return count


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
