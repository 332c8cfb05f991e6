"""Nothing blocking runs on the server's event loop: a held database lock or a hostile manifest does not stall
other requests."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable

import httpx

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

#: A bound on how long an ordinary request may take while the server is under attack (not a measurement).
ANSWER_WITHIN = 5.0
#: The bound for ``GET /v2/`` while hostile manifests are validated (it answers in well under a second).
PING_WITHIN = 3.0


class Background:
    """Run one request on a thread; ``result()`` waits for its response (or re-raises its error)."""

    def __init__(self, request: Callable[[], httpx.Response]) -> None:
        self._outcome: list[httpx.Response | BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(request,))
        self._thread.start()

    def _run(self, request: Callable[[], httpx.Response]) -> None:
        try:
            self._outcome.append(request())
        except BaseException as exc:
            self._outcome.append(exc)

    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self, timeout: float = 120.0) -> httpx.Response:
        self._thread.join(timeout)
        assert self._outcome, "the request did not finish"
        outcome = self._outcome[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def test_reads_are_answered_while_another_process_holds_the_database_write_lock(
    fresh_dockyard: DockyardServer,
) -> None:
    server = fresh_dockyard.start()
    image = make_image(layers=1, seed="locked-db")
    push(image, server.url, "held/app", tag="v1")
    layer = image.blobs[-1]
    second = make_image(layers=1, seed="locked-db-2")
    for blob in second.blobs:  # blobs of the manifest that will wait for the lock
        push_blob = httpx.post(f"{server.url}/v2/held/app/blobs/uploads/?digest={blob.digest}", content=blob.data)
        assert push_blob.status_code == 201

    holder = sqlite3.connect(server.data_dir / "metadata.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a long `dockyard gc` or another worker's commit looks like
    try:
        waiting_push = Background(lambda: httpx.put(
            f"{server.url}/v2/held/app/manifests/v2", content=second.body,
            headers={"Content-Type": second.media_type}, timeout=120.0,
        ))
        with httpx.Client(base_url=server.url, timeout=ANSWER_WITHIN) as client:
            assert client.get("/v2/").status_code == 200
            pulled = client.get(f"/v2/held/app/blobs/{layer.digest}")
            assert pulled.status_code == 200 and pulled.content == layer.data
            manifest = client.get("/v2/held/app/manifests/v1", headers={"Accept": image.media_type})
            assert manifest.status_code == 200 and manifest.content == image.body
            assert client.get("/v2/held/app/tags/list").json()["tags"] == ["v1"]
        assert waiting_push.running(), "the manifest push should be waiting for the database lock"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert waiting_push.result().status_code == 201
    assert httpx.get(f"{server.url}/v2/held/app/tags/list").json()["tags"] == ["v1", "v2"]


def _manifest(config: dict[str, object], layers: list[dict[str, object]]) -> bytes:
    document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": layers}
    return json.dumps(document, separators=(",", ":")).encode()


def test_manifests_naming_one_layer_38120_times_do_not_stall_the_server(fresh_dockyard: DockyardServer) -> None:
    """Eight such 4 MiB manifests pushed at once (half of them also naming a missing blob, last): each is accepted
    or refused, and meanwhile ``GET /v2/`` keeps answering (it waited for each validation in turn before)."""
    server = fresh_dockyard.start()
    config_digest, layer_digest, missing = (compute_digest(data) for data in (b"{}", b"l", b"never uploaded"))
    for data, digest in ((b"{}", config_digest), (b"l", layer_digest)):
        uploaded = httpx.post(f"{server.url}/v2/many/layers/blobs/uploads/?digest={digest}", content=data)
        assert uploaded.status_code == 201
    config = {"mediaType": mt.OCI_EMPTY, "digest": config_digest, "size": 2}
    layer = {"mediaType": "x", "digest": layer_digest, "size": 1}
    accepted = _manifest(config, [layer] * 38_120)
    refused = _manifest(config, [layer] * 38_119 + [{"mediaType": "x", "digest": missing, "size": 1}])
    assert len(accepted) <= 4 * 1024 * 1024 and len(refused) <= 4 * 1024 * 1024

    def put(tag: str, body: bytes) -> Background:
        return Background(lambda: httpx.put(
            f"{server.url}/v2/many/layers/manifests/{tag}", content=body,
            headers={"Content-Type": mt.OCI_MANIFEST}, timeout=120.0,
        ))

    good = [put(tag, accepted) for tag in ("a", "b", "c", "d")]
    bad = [put(tag, refused) for tag in ("e", "f", "g", "h")]
    with httpx.Client(base_url=server.url, timeout=PING_WITHIN) as client:
        while any(p.running() for p in good + bad):
            assert client.get("/v2/").status_code == 200
    assert [p.result().status_code for p in good] == [201] * 4
    for p in bad:
        error = p.result().json()["errors"][0]
        assert (error["code"], error["detail"]) == ("MANIFEST_BLOB_UNKNOWN", {"digest": missing})
    assert httpx.get(f"{server.url}/v2/many/layers/tags/list").json()["tags"] == ["a", "b", "c", "d"]
