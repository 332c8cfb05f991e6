"""Repository-scoped tokens against every ``/v2`` and ``/acr/v1`` route: the full matrix of ACR's actions by routes,
catalog filtering, 401 vs 403, the JWT scopes a token gets, and a token's life (create, disable, enable, delete).

The expected permission of each route is written out here, independently of ``api/access.py``'s table, and a test
checks that every route of that table is in the matrix.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from dockyard.server.api.access import ROUTE_ACCESS
from dockyard.server.auth.accounts import TokenAdmin
from dockyard.server.auth.rights import merge_rules
from dockyard.server.storage.metadata import SqliteMetadataStore
from tests.conftest import unique
from tests.support.images import Content, make_image, push
from tests.support.inprocess import InProcessServer
from tests.support.servers import write_htpasswd

ADMIN = ("admin", "admin-pass")
PERMISSIONS = ("content/read", "content/write", "content/delete", "metadata/read", "metadata/write")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """The registry in this process with auth on: one administrator; tokens are added per test."""
    work = tmp_path_factory.mktemp("token-access")
    htpasswd = write_htpasswd(work / "htpasswd", {ADMIN[0]: ADMIN[1]})
    with InProcessServer(work / "data", htpasswd=str(htpasswd), login_failure_limit=0) as server:
        yield server


@pytest.fixture(scope="module")
def admin_tools(app: InProcessServer) -> Iterator[TokenAdmin]:
    """What ``dockyard token`` uses: the data directory's database through a connection of its own."""
    store = SqliteMetadataStore(app.data_dir)
    yield TokenAdmin(store)
    store.close()


@dataclass
class Seeded:
    """A repository holding ``image`` as ``v1`` and an open upload session, pushed by the administrator."""

    repo: str
    image: Content
    upload: str


def seed(app: InProcessServer) -> Seeded:
    repo = unique("team/matrix")
    image = make_image(layers=1, layer_size=64)
    with app.client(auth=ADMIN) as http:
        push(image, app.url, repo, "v1", client=http)
        started = http.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
    return Seeded(repo, image, started.headers["location"].rsplit("/", 1)[-1].split("?")[0])


def make_token(admin: TokenAdmin, *scopes: tuple[str, tuple[str, ...]],
               scope_map: str | None = None) -> tuple[str, str]:
    name = unique("tok").replace("-", "")[-40:]
    _, password = admin.create_token(name, merge_rules(list(scopes)), scope_map, None)
    return name, password


def _layer(s: Seeded) -> str:
    return s.image.blobs[1].digest


def _new_manifest(http: httpx.Client, s: Seeded) -> httpx.Response:
    body = s.image.body
    return http.put(f"/v2/{s.repo}/manifests/v2", content=body, headers={"Content-Type": s.image.media_type})


#: (route name, method, what it needs, how to call it) — the action by route table this file checks.
Call = Callable[[httpx.Client, Seeded], httpx.Response]
MATRIX: list[tuple[str, str, str, Call]] = [
    ("v2.tags", "GET", "content/read", lambda h, s: h.get(f"/v2/{s.repo}/tags/list")),
    ("v2.manifest", "GET", "content/read", lambda h, s: h.get(f"/v2/{s.repo}/manifests/v1")),
    ("v2.manifest", "HEAD", "content/read", lambda h, s: h.head(f"/v2/{s.repo}/manifests/v1")),
    ("v2.manifest", "PUT", "content/write", _new_manifest),
    ("v2.manifest", "DELETE", "content/delete", lambda h, s: h.delete(f"/v2/{s.repo}/manifests/{s.image.digest}")),
    ("v2.blob", "GET", "content/read", lambda h, s: h.get(f"/v2/{s.repo}/blobs/{_layer(s)}")),
    ("v2.blob", "HEAD", "content/read", lambda h, s: h.head(f"/v2/{s.repo}/blobs/{_layer(s)}")),
    ("v2.blob", "DELETE", "content/delete", lambda h, s: h.delete(f"/v2/{s.repo}/blobs/{_layer(s)}")),
    ("v2.upload_start", "POST", "content/write", lambda h, s: h.post(f"/v2/{s.repo}/blobs/uploads/")),
    ("v2.upload", "GET", "content/write", lambda h, s: h.get(f"/v2/{s.repo}/blobs/uploads/{s.upload}")),
    ("v2.upload", "PATCH", "content/write",
     lambda h, s: h.patch(f"/v2/{s.repo}/blobs/uploads/{s.upload}", content=b"abc",
                          headers={"Content-Type": "application/octet-stream"})),
    ("v2.upload", "PUT", "content/write",
     lambda h, s: h.put(f"/v2/{s.repo}/blobs/uploads/{s.upload}", params={"digest": _layer(s)},
                        content=s.image.blobs[1].data, headers={"Content-Type": "application/octet-stream"})),
    ("v2.upload", "DELETE", "content/write", lambda h, s: h.delete(f"/v2/{s.repo}/blobs/uploads/{s.upload}")),
    ("v2.referrers", "GET", "content/read", lambda h, s: h.get(f"/v2/{s.repo}/referrers/{s.image.digest}")),
    ("acr.repository", "GET", "metadata/read", lambda h, s: h.get(f"/acr/v1/{s.repo}")),
    ("acr.repository", "PATCH", "metadata/write",
     lambda h, s: h.patch(f"/acr/v1/{s.repo}", json={"readEnabled": True})),
    ("acr.repository", "DELETE", "content/delete", lambda h, s: h.delete(f"/acr/v1/{s.repo}")),
    ("acr.tags", "GET", "metadata/read", lambda h, s: h.get(f"/acr/v1/{s.repo}/_tags")),
    ("acr.tag", "GET", "metadata/read", lambda h, s: h.get(f"/acr/v1/{s.repo}/_tags/v1")),
    ("acr.tag", "PATCH", "metadata/write",
     lambda h, s: h.patch(f"/acr/v1/{s.repo}/_tags/v1", json={"readEnabled": True})),
    ("acr.tag", "DELETE", "content/delete", lambda h, s: h.delete(f"/acr/v1/{s.repo}/_tags/v1")),
    ("acr.manifests", "GET", "metadata/read", lambda h, s: h.get(f"/acr/v1/{s.repo}/_manifests")),
    ("acr.manifest", "GET", "metadata/read", lambda h, s: h.get(f"/acr/v1/{s.repo}/_manifests/{s.image.digest}")),
    ("acr.manifest", "PATCH", "metadata/write",
     lambda h, s: h.patch(f"/acr/v1/{s.repo}/_manifests/{s.image.digest}", json={"readEnabled": True})),
]
#: Routes every authenticated caller may call (the catalogs are filtered, see below); and the token endpoints.
OPEN_TO_ANY_CALLER = {("v2.base", "GET"), ("v2.catalog", "GET"), ("acr.catalog", "GET")}
PUBLIC = {
    ("oauth.token", "GET"), ("oauth.token", "POST"), ("oauth.exchange", "POST"),
    ("health.live", "GET"), ("health.ready", "GET"), ("metrics.open", "GET"),
}
#: Routes only administrators (htpasswd users) may call: no token action grants them.
ADMIN_ONLY = {("metrics.admin", "GET")}


def test_the_matrix_covers_every_route_of_the_access_table() -> None:
    table = {(name, method) for name, methods in ROUTE_ACCESS.items() for method in methods}
    covered = {(name, method) for name, method, _, _ in MATRIX if method != "HEAD"}
    assert table == covered | OPEN_TO_ANY_CALLER | PUBLIC | ADMIN_ONLY
    for name, method, needed, _ in MATRIX:
        need = ROUTE_ACCESS[name]["GET" if method == "HEAD" else method]
        assert need is not None and need.permission == needed, (name, method)


@pytest.mark.parametrize("permission", PERMISSIONS)
@pytest.mark.parametrize(("route", "method", "needed", "call"), MATRIX,
                         ids=[f"{name}-{method}" for name, method, _, _ in MATRIX])
def test_a_token_may_do_exactly_what_its_action_allows(
    app: InProcessServer, admin_tools: TokenAdmin, permission: str, route: str, method: str, needed: str,
    call: Call,
) -> None:
    seeded = seed(app)
    name, password = make_token(admin_tools, (seeded.repo, (permission,)))
    with app.client(auth=(name, password)) as http:
        response = call(http, seeded)
    if permission == needed:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == 403, response.text
        if method != "HEAD":
            error = response.json()["errors"][0]
            assert error["code"] == "DENIED"
            assert f"{needed} on repository {seeded.repo}" in error["message"]
            expected = {"Type": "repository", "Name": seeded.repo, "Permission": needed}
            assert expected.items() <= error["detail"][0].items()


def test_a_token_has_no_rights_on_other_repositories(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    mine, other = seed(app), seed(app)
    name, password = make_token(admin_tools, (mine.repo, PERMISSIONS))
    with app.client(auth=(name, password)) as http:
        assert http.get(f"/v2/{mine.repo}/manifests/v1").status_code == 200
        for _, method, _, call in MATRIX:
            if method != "HEAD":
                assert call(http, other).status_code == 403


def test_prefix_patterns_and_scope_maps(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    seeded = seed(app)  # team/matrix-…
    prefix = seeded.repo.split("/")[0] + "/*"
    name, password = make_token(admin_tools, (prefix, ("content/read",)))
    with app.client(auth=(name, password)) as http:
        assert http.get(f"/v2/{seeded.repo}/manifests/v1").status_code == 200
        assert http.get(f"/acr/v1/{seeded.repo}/_tags").status_code == 403
    mapname = unique("map").replace("-", "")[-40:]
    admin_tools.put_scope_map(mapname, "", merge_rules([(seeded.repo, ("metadata/read",))]), create=True)
    name, password = make_token(admin_tools, scope_map=mapname)
    with app.client(auth=(name, password)) as http:
        assert http.get(f"/acr/v1/{seeded.repo}/_tags").status_code == 200
        admin_tools.put_scope_map(mapname, None, merge_rules([(seeded.repo, ("content/read",))]), create=False)
        assert http.get(f"/acr/v1/{seeded.repo}/_tags").status_code == 403  # the new rules, at once
        assert http.get(f"/v2/{seeded.repo}/tags/list").status_code == 200
    name, password = make_token(admin_tools, scope_map="_repositories_pull")
    with app.client(auth=(name, password)) as http:
        assert http.get(f"/v2/{seeded.repo}/manifests/v1").status_code == 200
        assert _new_manifest(http, seeded).status_code == 403


def test_catalogs_list_only_readable_repositories(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    readable, metadata_only, write_only, hidden = (seed(app) for _ in range(4))
    name, password = make_token(admin_tools, (readable.repo, ("content/read",)),
                                (metadata_only.repo, ("metadata/read",)), (write_only.repo, ("content/write",)))
    with app.client(auth=(name, password)) as http:
        for path in ("/v2/_catalog", "/acr/v1/_catalog"):
            names = http.get(path).json()["repositories"]
            assert readable.repo in names and metadata_only.repo in names
            assert write_only.repo not in names and hidden.repo not in names
        first = http.get("/v2/_catalog", params={"n": 1})
        assert first.json()["repositories"] == sorted([readable.repo, metadata_only.repo])[:1]
        assert "last=" in first.headers["link"]
    with app.client(auth=ADMIN) as http:
        assert hidden.repo in http.get("/v2/_catalog").json()["repositories"]


def test_no_or_wrong_credentials_are_401_with_a_challenge(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    seeded = seed(app)
    name, password = make_token(admin_tools, (seeded.repo, ("content/read",)))
    for auth in (None, (name, "wrong"), ("nobody", password)):
        with app.client(auth=auth) as http:
            response = http.get(f"/v2/{seeded.repo}/manifests/v1")
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer realm=")
            assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_access_tokens_carry_only_the_granted_actions(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    seeded = seed(app)
    name, password = make_token(admin_tools, (seeded.repo, ("content/read", "metadata/read")))
    every = f"repository:{seeded.repo}:pull,push,delete,metadata_read,metadata_write"
    with app.client() as http:
        docker = http.get("/oauth2/token", params={"scope": every, "service": app.host}, auth=(name, password))
        acr = http.post("/oauth2/token", data={"grant_type": "password", "username": name, "password": password,
                                               "scope": f"repository:{seeded.repo}:*", "service": app.host})
    for response in (docker, acr):
        assert response.status_code == 200, response.text
        scopes = _claims(response.json()["access_token"])["scopes"]
        assert scopes == [f"repository:{seeded.repo}:pull,metadata_read"]
    bearer = {"Authorization": f"Bearer {docker.json()['token']}"}
    with app.client(headers=bearer) as http:
        assert http.get(f"/v2/{seeded.repo}/manifests/v1").status_code == 200
        assert http.get(f"/acr/v1/{seeded.repo}/_tags").status_code == 200
        refused = _new_manifest(http, seeded)
        assert refused.status_code == 403 and "content/write" in refused.json()["errors"][0]["message"]
        assert jwt.get_unverified_header(docker.json()["token"])["alg"] == "HS256"


def _refresh(http: httpx.Client, app: InProcessServer, refresh_token: str) -> httpx.Response:
    return http.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                            "service": app.host, "scope": "repository:x:pull"})


def test_token_lifecycle(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    seeded = seed(app)
    name, password = make_token(admin_tools, (seeded.repo, ("content/read",)))
    manifest = f"/v2/{seeded.repo}/manifests/v1"
    with app.client() as http:
        login = http.post("/oauth2/token", data={"grant_type": "password", "username": name, "password": password,
                                                 "access_type": "offline", "service": app.host,
                                                 "scope": f"repository:{seeded.repo}:pull"})
        assert login.status_code == 200, login.text
        refresh, access = login.json()["refresh_token"], login.json()["access_token"]
        bearer = {"Authorization": f"Bearer {access}"}
        assert http.get(manifest, auth=(name, password)).status_code == 200
        assert http.get(manifest, headers=bearer).status_code == 200
        assert _refresh(http, app, refresh).status_code == 200

        admin_tools.update_token(name, enabled=False)
        assert http.get(manifest, auth=(name, password)).status_code == 401
        assert http.get(manifest, headers=bearer).status_code == 401
        assert _refresh(http, app, refresh).status_code == 401

        admin_tools.update_token(name, enabled=True)
        assert http.get(manifest, auth=(name, password)).status_code == 200
        assert _refresh(http, app, refresh).status_code == 401  # revoked for good
        assert http.get(manifest, headers=bearer).status_code == 401

        admin_tools.delete_token(name)
        assert http.get(manifest, auth=(name, password)).status_code == 401
        # a new token of the same name gets a new id: nothing minted for the old one comes back
        _, again = admin_tools.create_token(name, merge_rules([(seeded.repo, ("content/read",))]), None, None)
        assert _refresh(http, app, refresh).status_code == 401
        assert http.get(manifest, auth=(name, again)).status_code == 200


def test_a_cached_bearer_token_dies_with_its_repository_token(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    """A bearer token minted for a repository-scoped token is verified once and cached; the token's state is
    still read on every request, so changing, disabling or deleting it takes effect at once."""
    seeded = seed(app)
    name, password = make_token(admin_tools, (seeded.repo, ("content/read",)))
    manifest = f"/v2/{seeded.repo}/manifests/v1"

    def mint(http: httpx.Client) -> dict[str, str]:
        issued = http.get("/oauth2/token", params={"scope": f"repository:{seeded.repo}:pull", "service": app.host},
                          auth=(name, password))
        assert issued.status_code == 200, issued.text
        return {"Authorization": f"Bearer {issued.json()['access_token']}"}

    with app.client() as http:
        bearer = mint(http)
        for _ in range(3):
            assert http.get(manifest, headers=bearer).status_code == 200
        admin_tools.update_token(name, rules=merge_rules([(seeded.repo, ("content/read", "metadata/read"))]))
        assert http.get(manifest, headers=bearer).status_code == 401
        bearer = mint(http)
        assert http.get(manifest, headers=bearer).status_code == 200
        admin_tools.update_token(name, enabled=False)
        assert http.get(manifest, headers=bearer).status_code == 401
        admin_tools.update_token(name, enabled=True)
        bearer = mint(http)
        assert http.get(manifest, headers=bearer).status_code == 200
        admin_tools.delete_token(name)
        assert http.get(manifest, headers=bearer).status_code == 401


def test_expired_tokens_are_refused(app: InProcessServer, admin_tools: TokenAdmin) -> None:
    seeded = seed(app)
    name, password = make_token(admin_tools, (seeded.repo, ("content/read",)))
    with app.client(auth=(name, password)) as http:
        assert http.get(f"/v2/{seeded.repo}/manifests/v1").status_code == 200
        admin_tools.update_token(name, expires_in_days=-1 / 86400)
        assert http.get(f"/v2/{seeded.repo}/manifests/v1").status_code == 401


@pytest.mark.parametrize(("route", "method", "needed", "call"), MATRIX,
                         ids=[f"{name}-{method}" for name, method, _, _ in MATRIX])
def test_htpasswd_users_are_administrators(app: InProcessServer, route: str, method: str, needed: str,
                                           call: Call) -> None:
    with app.client(auth=ADMIN) as http:
        response = call(http, seed(app))
    assert response.status_code < 400, response.text




def test_a_mount_from_an_unreadable_repository_becomes_a_plain_upload(
    app: InProcessServer, admin_tools: TokenAdmin
) -> None:
    source, target = seed(app), seed(app)
    layer = _layer(source)
    mount = {"mount": layer, "from": source.repo}
    name, password = make_token(admin_tools, (target.repo, ("content/write",)))
    with app.client(auth=(name, password)) as http:
        response = http.post(f"/v2/{target.repo}/blobs/uploads/", params=mount)
        assert response.status_code == 202, response.text  # a session, and nothing of the source revealed
    name, password = make_token(admin_tools, (target.repo, ("content/write",)), (source.repo, ("content/read",)))
    with app.client(auth=(name, password)) as http:
        response = http.post(f"/v2/{target.repo}/blobs/uploads/", params=mount)
        assert response.status_code == 201, response.text


def test_tokens_fail_closed_when_the_database_vanishes(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {ADMIN[0]: ADMIN[1]})
    with InProcessServer(tmp_path / "data", htpasswd=str(htpasswd)) as server:
        store = SqliteMetadataStore(server.data_dir)
        try:
            _, password = TokenAdmin(store).create_token("ci", merge_rules([("app", ("content/read",))]), None, None)
        finally:
            store.close()
        with server.client(auth=("ci", password)) as http:
            assert http.get("/v2/").status_code == 200
            (server.data_dir / "metadata.db").unlink()
            refused = http.get("/v2/")
            assert refused.status_code == 401, refused.text
        with server.client(auth=ADMIN) as http:
            assert http.get("/v2/").status_code == 503
