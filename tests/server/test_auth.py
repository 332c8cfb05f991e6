"""``dockyard serve --htpasswd``: challenges, Basic auth, the token endpoints, scope isolation, anonymous pull."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import TEST_USER, unique
from tests.server.test_distribution_api import assert_error
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

pytestmark = pytest.mark.backends

CHALLENGE = re.compile(r'^Bearer realm="(?P<realm>[^"]+)",service="(?P<service>[^"]+)"(?:,scope="(?P<scope>[^"]+)")?$')


def challenge(response: httpx.Response) -> dict[str, str | None]:
    """The parsed ``WWW-Authenticate`` of a 401 (bare commas, as ACR sends it)."""
    assert response.status_code == 401, response.text
    match = CHALLENGE.match(response.headers["WWW-Authenticate"])
    assert match, response.headers["WWW-Authenticate"]
    return match.groupdict()


def token_for(server: DockyardServer, *scopes: str, auth: tuple[str, str] | None = TEST_USER) -> str:
    params = [("service", server.host)] + [("scope", s) for s in scopes]
    response = httpx.get(f"{server.url}/oauth2/token", params=params, auth=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def seeded(dockyard_auth_server: DockyardServer) -> str:
    """A repository holding ``v1`` on the auth server."""
    repo = unique("auth")
    push(make_image(seed=repo), dockyard_auth_server.url, repo, tag="v1", auth=TEST_USER)
    return repo


@pytest.fixture
def anon_server(tmp_path: Path, htpasswd_file: Path) -> Iterator[DockyardServer]:
    with DockyardServer(tmp_path / "anon", "--htpasswd", str(htpasswd_file), "--anonymous-pull") as server:
        yield server  # type: ignore[misc]


def test_challenges_name_the_scope_of_each_operation(dockyard_auth_server: DockyardServer, seeded: str) -> None:
    base = dockyard_auth_server.url
    host = dockyard_auth_server.host
    base_challenge = challenge(httpx.get(f"{base}/v2/"))
    assert base_challenge["realm"] == f"{base}/oauth2/token" and base_challenge["service"] == host
    cases = [
        ("GET", f"/v2/{seeded}/manifests/v1", f"repository:{seeded}:pull"),
        ("GET", f"/v2/{seeded}/tags/list", f"repository:{seeded}:pull"),
        ("PUT", f"/v2/{seeded}/manifests/v2", f"repository:{seeded}:push"),
        ("POST", f"/v2/{seeded}/blobs/uploads/", f"repository:{seeded}:push"),
        ("DELETE", f"/v2/{seeded}/manifests/v1", f"repository:{seeded}:delete"),
        ("GET", f"/acr/v1/{seeded}", f"repository:{seeded}:metadata_read"),
        ("PATCH", f"/acr/v1/{seeded}/_tags/v1", f"repository:{seeded}:metadata_write"),
        ("DELETE", f"/acr/v1/{seeded}", f"repository:{seeded}:delete"),
        ("GET", "/v2/_catalog", "registry:catalog:*"),
        ("GET", "/acr/v1/_catalog", "registry:catalog:*"),
    ]
    for method, path, scope in cases:
        response = httpx.request(method, f"{base}{path}")
        assert challenge(response)["scope"] == scope, (method, path)
        assert_error(response, 401, "UNAUTHORIZED")
    assert httpx.get(f"{base}/v2/{seeded}/manifests/v1", auth=TEST_USER).status_code == 200


def test_basic_auth_directly(dockyard_auth_server: DockyardServer, seeded: str) -> None:
    base = dockyard_auth_server.url
    assert httpx.get(f"{base}/v2/", auth=TEST_USER).status_code == 200
    assert httpx.get(f"{base}/acr/v1/{seeded}/_tags", auth=TEST_USER).status_code == 200
    assert httpx.get(f"{base}/v2/_catalog", auth=TEST_USER).status_code == 200
    wrong = httpx.get(f"{base}/v2/{seeded}/tags/list", auth=(TEST_USER[0], "wrong"))
    assert_error(wrong, 401, "UNAUTHORIZED")
    assert challenge(wrong)["scope"] == f"repository:{seeded}:pull"
    assert httpx.get(f"{base}/v2/", headers=bearer("not-a-token")).status_code == 401


def test_get_token_docker_spec(dockyard_auth_server: DockyardServer, seeded: str) -> None:
    server = dockyard_auth_server
    response = httpx.get(
        f"{server.url}/oauth2/token",
        params=[("service", server.host), ("scope", f"repository:{seeded}:pull"), ("scope", "registry:catalog:*"),
                ("api-version", "2021-07-01")],
        auth=TEST_USER,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0 and body["issued_at"]
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    assert claims["sub"] == TEST_USER[0]
    assert set(claims["scopes"]) == {f"repository:{seeded}:pull", "registry:catalog:*"}
    headers = bearer(body["token"])
    assert httpx.get(f"{server.url}/v2/{seeded}/manifests/v1", headers=headers).status_code == 200
    assert httpx.get(f"{server.url}/v2/_catalog", headers=headers).status_code == 200
    assert_error(httpx.get(f"{server.url}/oauth2/token", auth=(TEST_USER[0], "nope")), 401, "UNAUTHORIZED")
    assert_error(httpx.get(f"{server.url}/oauth2/token"), 401, "UNAUTHORIZED")


def test_token_scope_isolation(dockyard_auth_server: DockyardServer, seeded: str) -> None:
    server = dockyard_auth_server
    other = unique("auth-other")
    push(make_image(seed=other), server.url, other, tag="v1", auth=TEST_USER)
    pull_only = bearer(token_for(server, f"repository:{seeded}:pull"))
    assert httpx.get(f"{server.url}/v2/{seeded}/manifests/v1", headers=pull_only).status_code == 200
    # Another repository: refused, and the challenge names what is missing.
    refused = httpx.get(f"{server.url}/v2/{other}/manifests/v1", headers=pull_only)
    assert challenge(refused)["scope"] == f"repository:{other}:pull"
    # Pull token used to push or delete.
    assert_error(httpx.post(f"{server.url}/v2/{seeded}/blobs/uploads/", headers=pull_only), 401, "UNAUTHORIZED")
    assert_error(httpx.delete(f"{server.url}/v2/{seeded}/manifests/v1", headers=pull_only), 401, "UNAUTHORIZED")
    assert_error(httpx.get(f"{server.url}/acr/v1/{seeded}", headers=pull_only), 401, "UNAUTHORIZED")
    assert_error(httpx.get(f"{server.url}/v2/_catalog", headers=pull_only), 401, "UNAUTHORIZED")
    push_token = bearer(token_for(server, f"repository:{other}:push"))
    # A push token reads too (as one pushing client expects to read back what it wrote).
    assert httpx.get(f"{server.url}/v2/{other}/manifests/v1", headers=push_token).status_code == 200
    start = httpx.post(f"{server.url}/v2/{other}/blobs/uploads/", headers=push_token)
    assert start.status_code == 202
    assert httpx.delete(f"{server.url}{start.headers['Location']}", headers=push_token).status_code == 204
    assert httpx.post(f"{server.url}/v2/{seeded}/blobs/uploads/", headers=push_token).status_code == 401


def test_post_token_password_and_refresh(dockyard_auth_server: DockyardServer, seeded: str) -> None:
    server = dockyard_auth_server
    scope = f"repository:{seeded}:metadata_read"
    form = {"grant_type": "password", "service": server.host, "scope": scope,
            "username": TEST_USER[0], "password": TEST_USER[1]}
    response = httpx.post(f"{server.url}/oauth2/token", params={"api-version": "2021-07-01"}, data=form)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert httpx.get(f"{server.url}/acr/v1/{seeded}", headers=bearer(token)).status_code == 200
    bad = httpx.post(f"{server.url}/oauth2/token", data={**form, "password": "wrong"})
    assert_error(bad, 401, "UNAUTHORIZED")
    # No credentials and no --anonymous-pull: refused.
    anonymous = httpx.post(f"{server.url}/oauth2/token", data={"grant_type": "password", "scope": scope})
    assert_error(anonymous, 401, "UNAUTHORIZED")
    refresh = httpx.post(f"{server.url}/oauth2/token",
                         data={"grant_type": "refresh_token", "refresh_token": "forged", "scope": scope})
    assert_error(refresh, 401, "UNAUTHORIZED")
    assert_error(httpx.post(f"{server.url}/oauth2/token", data={"grant_type": "magic"}), 400, "UNSUPPORTED")


def test_exchange_aad_token_then_refresh(dockyard_auth_server: DockyardServer, seeded: str) -> None:
    server = dockyard_auth_server
    exchanged = httpx.post(
        f"{server.url}/oauth2/exchange",
        params={"api-version": "2021-07-01"},
        data={"grant_type": "access_token", "service": server.host, "access_token": "any-entra-id-token"},
    )
    assert exchanged.status_code == 200, exchanged.text
    refresh_token = exchanged.json()["refresh_token"]
    assert jwt.decode(refresh_token, options={"verify_signature": False})["typ"] == "refresh"
    # A refresh token is not an access token.
    assert httpx.get(f"{server.url}/v2/{seeded}/tags/list", headers=bearer(refresh_token)).status_code == 401
    scope = f"repository:{seeded}:pull,push,delete"
    response = httpx.post(
        f"{server.url}/oauth2/token",
        params={"api-version": "2021-07-01"},
        data={"grant_type": "refresh_token", "service": server.host, "scope": scope, "refresh_token": refresh_token},
    )
    assert response.status_code == 200, response.text
    headers = bearer(response.json()["access_token"])
    assert httpx.get(f"{server.url}/v2/{seeded}/tags/list", headers=headers).status_code == 200
    start = httpx.post(f"{server.url}/v2/{seeded}/blobs/uploads/", headers=headers)
    assert start.status_code == 202
    empty = httpx.post(f"{server.url}/oauth2/exchange", data={"grant_type": "access_token", "access_token": ""})
    assert_error(empty, 401, "UNAUTHORIZED")


def test_exchange_refused_without_emulator_flag(tmp_path: Path, htpasswd_file: Path) -> None:
    with DockyardServer(tmp_path / "strict", "--htpasswd", str(htpasswd_file)) as server:
        response = httpx.post(
            f"{server.url}/oauth2/exchange",
            data={"grant_type": "access_token", "service": server.host, "access_token": "any-entra-id-token"},
        )
        assert_error(response, 401, "UNAUTHORIZED")
        assert "refresh_token" not in response.text


def test_anonymous_pull(anon_server: DockyardServer) -> None:
    repo = unique("anon")
    image = make_image(seed=repo)
    push(image, anon_server.url, repo, tag="v1", auth=TEST_USER)
    base = anon_server.url
    assert httpx.get(f"{base}/v2/{repo}/manifests/v1").status_code == 200
    assert httpx.get(f"{base}/v2/{repo}/blobs/{image.blobs[1].digest}").content == image.blobs[1].data
    assert httpx.get(f"{base}/acr/v1/{repo}/_tags").status_code == 200
    refused = httpx.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert challenge(refused)["scope"] == f"repository:{repo}:push"
    assert refused.json()["errors"][0]["detail"] == [{"Type": "repository", "Name": repo, "Action": "push"}]
    assert_error(httpx.delete(f"{base}/v2/{repo}/manifests/v1"), 401, "UNAUTHORIZED")
    # The ACR anonymous flow: grant_type=password without credentials gives a read-only token.
    response = httpx.post(f"{base}/oauth2/token", data={"grant_type": "password", "service": anon_server.host,
                                                        "scope": f"repository:{repo}:pull,push"})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["scopes"] == [f"repository:{repo}:pull"]
    assert httpx.get(f"{base}/v2/{repo}/manifests/v1", headers=bearer(token)).status_code == 200
    assert_error(httpx.post(f"{base}/v2/{repo}/blobs/uploads/", headers=bearer(token)), 401, "UNAUTHORIZED")
    anonymous_get = httpx.get(f"{base}/oauth2/token", params={"scope": f"repository:{repo}:push"})
    assert jwt.decode(anonymous_get.json()["token"], options={"verify_signature": False})["scopes"] == []


def test_tokens_survive_restart_and_other_servers_reject_them(
    tmp_path: Path, htpasswd_file: Path, dockyard_auth_server: DockyardServer
) -> None:
    with DockyardServer(tmp_path / "restart", "--htpasswd", str(htpasswd_file)) as server:
        token = token_for(server, "registry:catalog:*")
        assert httpx.get(f"{server.url}/v2/_catalog", headers=bearer(token)).status_code == 200
        server.restart()
        assert httpx.get(f"{server.url}/v2/_catalog", headers=bearer(token)).status_code == 200
        # Signed with this data directory's key: another registry does not accept it.
        assert httpx.get(f"{dockyard_auth_server.url}/v2/_catalog", headers=bearer(token)).status_code == 401
