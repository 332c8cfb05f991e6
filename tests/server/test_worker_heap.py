"""A serving process keeps what start-up made out of the cyclic garbage collector's passes (``gc.freeze``); an app
embedded in another process (tests, the in-process server) leaves that process's collector alone."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

from dockyard.server.app import create_app
from dockyard.server.config import ServerConfig


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
