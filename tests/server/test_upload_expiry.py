"""Upload sessions idle longer than ``--upload-ttl`` are removed by the running server; active ones stay."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.servers import DockyardServer

#: A bound on how long the server may take to sweep a session with a one-second TTL (not a measurement).
WAIT = 10.0


def test_idle_upload_sessions_expire_while_active_ones_stay(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "srv", "--upload-ttl", "1") as server, httpx.Client(
        base_url=server.url, timeout=WAIT
    ) as client:
        idle = client.post("/v2/ttl/app/blobs/uploads/").headers["Location"]
        active = client.post("/v2/ttl/app/blobs/uploads/").headers["Location"]
        sent = 0
        deadline = time.monotonic() + WAIT
        while client.get(idle).status_code != 404:
            assert time.monotonic() < deadline, "the idle session was not removed"
            chunk = client.patch(
                active, content=b"x" * 10,
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{sent}-{sent + 9}"},
            )
            assert chunk.status_code == 202, chunk.text
            sent += 10
            time.sleep(0.2)
        assert client.get(idle).json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        status = client.get(active)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{sent - 1}"
        # Once it goes idle, it expires too.
        deadline = time.monotonic() + WAIT
        while client.get(active).status_code != 404:
            assert time.monotonic() < deadline, "the formerly active session was not removed"
            time.sleep(0.2)
        assert list((server.data_dir / "uploads").iterdir()) == []
