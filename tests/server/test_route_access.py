"""Every route of every API is guarded by its entry in the one route → access table, and nothing else."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from dockyard.server.api import acr, distribution, oauth
from dockyard.server.api.access import ROUTE_ACCESS, route
from tests.conftest import TEST_USER, unique
from tests.server.test_auth import challenge
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

DIGEST = "sha256:" + "ab" * 32


async def _endpoint(request: Request) -> Response:
    return Response(b"")


def test_a_route_without_an_entry_is_refused() -> None:
    with pytest.raises(LookupError, match=r"v2\.blob .* PUT"):
        route("/v2/{name:path}/blobs/{digest}", _endpoint, "v2.blob", ["GET", "PUT"])
    with pytest.raises(LookupError, match=r"v2\.unknown"):
        route("/v2/unknown", _endpoint, "v2.unknown", ["GET"])


def test_each_route_asks_for_what_the_table_says(dockyard_auth_server: DockyardServer) -> None:
    repo = unique("access")
    push(make_image(seed=repo), dockyard_auth_server.url, repo, tag="v1", auth=TEST_USER)
    values = {"name": repo, "reference": "v1", "tag": "v1", "digest": DIGEST, "upload_id": "0" * 32}
    checked = 0
    for each in [*distribution.routes, *acr.routes, *oauth.routes]:
        path = each.path.replace("{name:path}", "{name}").format(**values)
        for method in sorted(each.methods or ()):
            need = ROUTE_ACCESS[str(each.name)].get(method if method != "HEAD" else "GET")
            response = httpx.request(method, f"{dockyard_auth_server.url}{path}")
            if need is None:  # the token endpoints authenticate by themselves: no scope is asked for
                assert response.status_code != 401 or challenge(response)["scope"] is None, (method, path)
                continue
            name = repo if need.resource == "repository" else need.name
            wanted = f"{need.resource}:{name}:{need.action}" if name else None
            assert challenge(response)["scope"] == wanted, (method, path)
            checked += 1
    assert checked >= 25
