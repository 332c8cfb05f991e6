"""Tokens of ``dockyard serve --htpasswd``: bound to the credential and the flags that issued them, with a bounded
lifetime, a required expiry and audience, and a signing key whose deletion revokes them all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from dockyard.server.auth.scopes import Grant
from dockyard.server.auth.tokens import ISSUER, LEEWAY, TokenIssuer, TokenLifetimes
from tests.server.test_auth import bearer, token_for
from tests.server.test_distribution_api import assert_error
from tests.support.servers import DockyardServer, write_htpasswd

ALICE = ("alice", "alice-pass-1")
BOB = ("bob", "bob-pass-1")
SCOPE = "registry:catalog:*"


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_htpasswd(tmp_path / "htpasswd", dict([ALICE, BOB]))


@pytest.fixture
def server(tmp_path: Path, users_file: Path) -> Iterator[DockyardServer]:
    with DockyardServer(tmp_path / "server", "--htpasswd", str(users_file)) as running:
        yield running  # type: ignore[misc]


def refresh_token_for(server: DockyardServer, auth: tuple[str, str]) -> str:
    """A refresh token from ``GET /oauth2/token?offline_token=true`` with Basic credentials."""
    response = httpx.get(f"{server.url}/oauth2/token",
                         params={"service": server.host, "scope": SCOPE, "offline_token": "true"}, auth=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["refresh_token"])


def redeem(server: DockyardServer, refresh_token: str) -> httpx.Response:
    """``POST /oauth2/token`` with ``grant_type=refresh_token``."""
    return httpx.post(f"{server.url}/oauth2/token", data={"grant_type": "refresh_token", "service": server.host,
                                                          "scope": SCOPE, "refresh_token": refresh_token})


def catalog(server: DockyardServer, token: str) -> int:
    return httpx.get(f"{server.url}/v2/_catalog", headers=bearer(token)).status_code


def test_tokens_die_with_their_user_or_password(server: DockyardServer, users_file: Path) -> None:
    alice_refresh, bob_refresh = refresh_token_for(server, ALICE), refresh_token_for(server, BOB)
    alice_access = token_for(server, SCOPE, auth=ALICE)
    assert redeem(server, alice_refresh).status_code == 200
    assert redeem(server, bob_refresh).status_code == 200
    assert catalog(server, alice_access) == 200
    # Alice is removed, Bob's password changes: no restart needed.
    write_htpasswd(users_file, {BOB[0]: "bob-pass-2"})
    assert_error(redeem(server, alice_refresh), 401, "UNAUTHORIZED")
    assert_error(redeem(server, bob_refresh), 401, "UNAUTHORIZED")
    assert catalog(server, alice_access) == 401
    assert httpx.get(f"{server.url}/v2/", auth=ALICE).status_code == 401
    assert httpx.get(f"{server.url}/v2/", auth=BOB).status_code == 401
    server.restart()
    assert_error(redeem(server, alice_refresh), 401, "UNAUTHORIZED")
    assert_error(redeem(server, bob_refresh), 401, "UNAUTHORIZED")
    assert catalog(server, alice_access) == 401
    # The new password works, and so do its tokens.
    assert redeem(server, refresh_token_for(server, (BOB[0], "bob-pass-2"))).status_code == 200


def test_an_htpasswd_file_broken_while_running_lets_nobody_in(server: DockyardServer, users_file: Path) -> None:
    assert httpx.get(f"{server.url}/v2/", auth=ALICE).status_code == 200
    users_file.write_text(users_file.read_text() + "carol:$apr1$Rk3T7Oy8$3j0f2ItW6ib6M7H3b2H8f/\n")
    assert httpx.get(f"{server.url}/v2/", auth=ALICE).status_code == 401
    assert f"htpasswd file {users_file}, line 3" in server.log()
    write_htpasswd(users_file, dict([ALICE]))
    assert httpx.get(f"{server.url}/v2/", auth=ALICE).status_code == 200


def test_refreshing_refresh_tokens_never_outlives_the_login(tmp_path: Path, users_file: Path) -> None:
    """``offline_token=true`` with a refresh token as Bearer mints another, but the chain ends at
    ``--token-max-lifetime`` after the password was checked, however often it is renewed."""
    with DockyardServer(tmp_path / "short", "--htpasswd", str(users_file), "--token-max-lifetime", "2") as server:
        login = time.monotonic()
        current = refresh_token_for(server, ALICE)
        access = redeem(server, current).json()["access_token"]
        while time.monotonic() - login < 8:  # 2 s of lifetime plus the 2 s clock leeway, and a margin
            response = httpx.get(f"{server.url}/oauth2/token", headers=bearer(current),
                                 params={"service": server.host, "scope": SCOPE, "offline_token": "true"})
            if response.status_code != 200:
                break
            current = response.json()["refresh_token"]
            time.sleep(0.5)
        assert_error(response, 401, "UNAUTHORIZED")
        assert time.monotonic() - login > 2
        assert_error(redeem(server, current), 401, "UNAUTHORIZED")
        assert catalog(server, access) == 401
        assert catalog(server, token_for(server, SCOPE, auth=ALICE)) == 200


def test_tokens_of_the_aad_emulator_die_with_the_flag(tmp_path: Path, users_file: Path) -> None:
    data = tmp_path / "data"
    with DockyardServer(tmp_path / "aad", "--htpasswd", str(users_file), "--accept-any-aad-token",
                        data_dir=data) as server:
        exchanged = httpx.post(f"{server.url}/oauth2/exchange",
                               data={"grant_type": "access_token", "service": server.host, "access_token": "x"})
        refresh = exchanged.json()["refresh_token"]
        granted = redeem(server, refresh)
        assert granted.status_code == 200, granted.text
        access = granted.json()["access_token"]
        assert catalog(server, access) == 200
    with DockyardServer(tmp_path / "strict", "--htpasswd", str(users_file), data_dir=data) as server:
        assert_error(redeem(server, refresh), 401, "UNAUTHORIZED")
        assert catalog(server, access) == 401
        assert catalog(server, token_for(server, SCOPE, auth=ALICE)) == 200


def test_tokens_issued_without_auth_are_refused_once_auth_is_on(tmp_path: Path, users_file: Path) -> None:
    data = tmp_path / "data"
    with DockyardServer(tmp_path / "open", data_dir=data) as server:
        refresh = refresh_token_for(server, ("alice", "anything"))
        access = token_for(server, SCOPE, auth=("alice", "anything"))
    with DockyardServer(tmp_path / "closed", "--htpasswd", str(users_file), data_dir=data) as server:
        assert_error(redeem(server, refresh), 401, "UNAUTHORIZED")
        assert catalog(server, access) == 401


def _resigned(token: str, key: bytes, **changes: object) -> str:
    claims = jwt.decode(token, key, algorithms=["HS256"], options={"verify_aud": False})
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm="HS256")


def test_tokens_need_an_expiry_and_this_registry_as_audience(server: DockyardServer) -> None:
    key = (server.data_dir / "auth" / "token-secret").read_bytes().strip()
    token = token_for(server, SCOPE, auth=ALICE)
    assert catalog(server, _resigned(token, key)) == 200
    assert catalog(server, _resigned(token, key, exp=None)) == 401
    assert catalog(server, _resigned(token, key, iat=None)) == 401
    assert catalog(server, _resigned(token, key, aud="some-other-registry:5000")) == 401
    assert catalog(server, _resigned(token, key, aud=None)) == 401
    # Asking for a token for another service still gets one for this registry only.
    other = httpx.get(f"{server.url}/oauth2/token", params={"service": "elsewhere", "scope": SCOPE}, auth=ALICE)
    assert jwt.decode(other.json()["token"], options={"verify_signature": False})["aud"] == server.host
    refresh = refresh_token_for(server, ALICE)
    assert_error(redeem(server, _resigned(refresh, key, exp=None)), 401, "UNAUTHORIZED")


def test_deleting_the_signing_key_revokes_every_token(server: DockyardServer) -> None:
    access, refresh = token_for(server, SCOPE, auth=ALICE), refresh_token_for(server, BOB)
    key = server.data_dir / "auth" / "token-secret"
    server.stop()
    key.unlink()
    server.start()
    assert catalog(server, access) == 401
    assert_error(redeem(server, refresh), 401, "UNAUTHORIZED")
    assert key.stat().st_mode & 0o777 == 0o600
    assert catalog(server, token_for(server, SCOPE, auth=ALICE)) == 200


def test_a_cached_bearer_token_is_refused_once_its_password_changes(server: DockyardServer, users_file: Path) -> None:
    """Verified tokens are cached, but whether their credential still holds is checked on every request."""
    token = token_for(server, SCOPE, auth=ALICE)
    for _ in range(3):  # verified once, then answered from the cache
        assert catalog(server, token) == 200
    write_htpasswd(users_file, {ALICE[0]: "alice-pass-2", BOB[0]: BOB[1]})
    assert catalog(server, token) == 401
    assert catalog(server, token_for(server, SCOPE, auth=(ALICE[0], "alice-pass-2"))) == 200
    write_htpasswd(users_file, dict([BOB]))  # alice removed: her new token goes too
    assert catalog(server, token) == 401


def test_a_cached_token_expires_with_its_exp_claim() -> None:
    """The cache answers a verified token until its ``exp`` (plus the leeway), then refuses it like the verifier."""
    issuer = TokenIssuer(b"k" * 32, TokenLifetimes())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "registry:5000", "sub": "alice", "typ": "access", "iat": now, "nbf": now,
              "exp": now - LEEWAY + 2, "src": "htpasswd", "auth_time": now, "scopes": [SCOPE]}
    token = jwt.encode(claims, issuer.key, algorithm="HS256")
    grant = issuer.decode(token, "access", "registry:5000")
    assert grant is not None and grant.subject == "alice"
    assert issuer.cached_source(token) == "htpasswd"
    assert issuer.decode(token, "access", "registry:5000") == grant  # from the cache
    # The cache never answers for another kind or audience than the one verified.
    assert issuer.decode(token, "refresh", "registry:5000") is None
    assert issuer.decode(token, "access", "elsewhere:5000") is None
    time.sleep(2.2)
    assert issuer.decode(token, "access", "registry:5000") is None
    assert issuer.cached_source(token) is None


def test_the_verified_token_cache_is_bounded() -> None:
    issuer = TokenIssuer(b"k" * 32, TokenLifetimes(), cache_size=3)
    tokens = [issuer.access_token(Grant(f"user{i}", True, source="htpasswd"), [], "r:1")[0] for i in range(5)]
    for token in tokens:
        assert issuer.decode(token, "access", "r:1") is not None
    assert len(issuer.verified) == 3
    assert issuer.cached_source(tokens[0]) is None and issuer.cached_source(tokens[-1]) == "htpasswd"
    assert issuer.decode(tokens[0], "access", "r:1") is not None  # evicted ones are simply verified again


def test_a_token_cache_size_of_zero_verifies_every_request(tmp_path: Path, users_file: Path) -> None:
    """``--token-cache-size 0`` keeps nothing: every bearer request is verified in full, and still answered."""
    running = DockyardServer(tmp_path / "nocache", "--htpasswd", str(users_file), "--token-cache-size", "0")
    with running:
        token = token_for(running, SCOPE, auth=ALICE)
        assert catalog(running, token) == 200
        assert catalog(running, token) == 200
    issuer = TokenIssuer(b"k" * 32, TokenLifetimes(), cache_size=0)
    token = issuer.access_token(Grant("alice", True, source="htpasswd"), [], "r:1")[0]
    assert issuer.decode(token, "access", "r:1") is not None
    assert len(issuer.verified) == 0 and issuer.cached_source(token) is None
