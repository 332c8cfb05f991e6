"""``abort_uploads``: a running upload stops at its next piece and the registry keeps no upload session."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from dockyard import ContainerRegistryClient
from dockyard.errors import TransferCancelledError
from tests.support.forward_proxy import ForwardProxy
from tests.support.servers import DockyardServer


def test_abort_stops_the_upload_and_deletes_its_session(fresh_dockyard: DockyardServer, repo_name: str) -> None:
    fresh_dockyard.start()
    uploads = fresh_dockyard.data_dir / "uploads"
    outcome: list[BaseException | None] = []
    with ForwardProxy(upload_rate=512 * 1024) as proxy, ContainerRegistryClient(
        fresh_dockyard.url, proxies={"http": proxy.url}
    ) as client:

        def upload() -> None:
            try:
                client.upload_blob(repo_name, io.BytesIO(os.urandom(8 * 1024 * 1024)))
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=upload)
        worker.start()
        deadline = time.monotonic() + 60
        while proxy.body_bytes_read < 256 * 1024:
            assert time.monotonic() < deadline and worker.is_alive(), outcome
            time.sleep(0.05)
        assert [p for p in uploads.iterdir() if p.is_dir()]
        assert client.abort_uploads() == 1
        worker.join(60)
        assert not worker.is_alive()
        assert isinstance(outcome[0], TransferCancelledError), outcome
        with pytest.raises(TransferCancelledError):
            client.upload_blob(repo_name, b"later")
    assert [p for p in uploads.iterdir() if p.is_dir()] == []
