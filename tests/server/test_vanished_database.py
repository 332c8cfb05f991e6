"""``metadata.db`` deleted (or replaced) under a running ``dockyard serve``: every request that needs metadata is
refused with 503 UNAVAILABLE naming the file, instead of acknowledging pushes that a restart would lose."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.images import make_image, push
from tests.support.servers import DockyardServer


def assert_unavailable(response: httpx.Response, db: Path) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert str(db) in error["message"]
    assert error["detail"] == {"database": str(db)}


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_vanished_database_refuses_writes_and_reads(fresh_dockyard: DockyardServer, how: str) -> None:
    server = fresh_dockyard.start()
    before = make_image(layers=1, seed="before-vanish")
    push(before, server.url, "vanish/app", tag="v1")
    db = server.data_dir / "metadata.db"
    db.unlink()
    if how == "replaced":
        db.write_bytes(b"")

    after = make_image(layers=1, seed="after-vanish")
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        assert_unavailable(client.get("/v2/"), db)
        assert_unavailable(client.post("/v2/vanish/app/blobs/uploads/"), db)
        blob = after.blobs[-1]
        assert_unavailable(client.post(f"/v2/vanish/app/blobs/uploads/?digest={blob.digest}", content=blob.data), db)
        assert_unavailable(
            client.put("/v2/vanish/app/manifests/v2", content=after.body, headers={"Content-Type": after.media_type}),
            db,
        )
        assert_unavailable(client.delete(f"/v2/vanish/app/manifests/{before.digest}"), db)
        assert_unavailable(client.get("/v2/vanish/app/tags/list"), db)
        assert_unavailable(client.get("/acr/v1/vanish/app/_tags"), db)
    assert "was deleted or replaced" in server.log()
