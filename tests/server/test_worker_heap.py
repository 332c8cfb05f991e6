"""A serving process keeps what start-up made out of the cyclic garbage collector's passes (``gc.freeze``); an app
embedded in another process (tests, the in-process server) leaves that process's collector alone."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dockyard.server.app import create_app
from dockyard.server.config import ServerConfig
from dockyard.server.heap import runs_on_glibc


async def _started_and_stopped(app: Any) -> int:
    """Run ``app``'s lifespan start-up, note the frozen object count, and shut it down again."""
    to_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    lifespan = asyncio.ensure_future(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    frozen = gc.get_freeze_count()
    await to_app.put({"type": "lifespan.shutdown"})
    assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
    await lifespan
    return frozen


def test_a_serving_process_freezes_its_start_up_heap(tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    try:
        embedded = asyncio.run(_started_and_stopped(create_app(ServerConfig(data_dir=str(tmp_path / "a")))))
        assert embedded == 0
        serving = create_app(ServerConfig(data_dir=str(tmp_path / "b")), serving_process=True)
        assert asyncio.run(_started_and_stopped(serving)) > 1000  # every module, the app, the open stores
        assert gc.isenabled()  # garbage made while serving is still collected
    finally:
        gc.unfreeze()


# Freed megabyte pieces (what a fill or an upload moves) made on one thread and dropped on another, 400 of them,
# after an app's lifespan start-up in a fresh process: prints the minor page faults the pieces cost.
_PIECES = """
import asyncio, queue, resource, sys, threading
sys.path[:0] = [sys.argv[3]]
from test_worker_heap import _started_and_stopped
from dockyard.server.app import create_app
from dockyard.server.config import ServerConfig
app = create_app(ServerConfig(data_dir=sys.argv[1]), serving_process=sys.argv[2] == "serving")
asyncio.run(_started_and_stopped(app))
pieces = queue.Queue(4)
def make():
    for _ in range(400):
        pieces.put(bytes([1]) * (1 << 20))
    pieces.put(None)
def drop():
    held = []
    while (piece := pieces.get()) is not None:
        held.append(piece)
        if len(held) > 8:
            held.clear()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
threads = [threading.Thread(target=make), threading.Thread(target=drop)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""



def _piece_faults(tmp_path: Path, kind: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_")}
    done = subprocess.run([sys.executable, "-c", _PIECES, str(tmp_path / kind), kind, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120, env={**environ, **env})
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not runs_on_glibc(), reason="the allocator settings are glibc's")
def test_a_serving_process_reuses_freed_pieces_instead_of_faulting_them_in_again(tmp_path: Path) -> None:
    embedded = _piece_faults(tmp_path, "embedded")
    serving = _piece_faults(tmp_path, "serving")
    # 400 MiB of pieces are 102,400 pages: given back and faulted in again, most of them are paid for again.
    assert embedded > 20_000
    assert serving < embedded / 3


@pytest.mark.skipif(not runs_on_glibc(), reason="the allocator settings are glibc's")
def test_allocator_settings_of_the_operator_are_left_alone(tmp_path: Path) -> None:
    tuned = _piece_faults(tmp_path, "serving", GLIBC_TUNABLES="glibc.malloc.check=0")
    assert tuned > 20_000  # the defaults stay: the operator's environment decides
