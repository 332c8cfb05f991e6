"""``DockerConfigCredential`` and the ``docker_config`` helpers, with a temp ``config.json`` and a real helper.

The registries are real: ``docker-registry`` behind htpasswd (Basic only) and ``dockyard serve --htpasswd``
(token flow). The credential helper is a small Python program installed as ``docker-credential-dockyardtest``
in a temp directory put first on ``PATH``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard import ClientAuthenticationError, ContainerRegistryClient
from dockyard.credentials import DockerConfigCredential, docker_config
from tests.conftest import TEST_USER
from tests.sdk.conftest import Seeder
from tests.support import cred_helper
from tests.support.images import Content

HELPER = "dockyardtest"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(params=["distribution_auth_server", "dockyard_auth_server"])
def server(request: pytest.FixtureRequest) -> Any:
    """Both registries that need credentials."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def pushed(server: Any, repo_name: str) -> Content:
    with httpx.Client(auth=httpx.BasicAuth(*TEST_USER), timeout=60.0) as http:
        return Seeder(server.url, http).image(repo_name, "v1")


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """``docker-credential-dockyardtest`` on PATH, its secret store and its call log."""
    bin_dir = tmp_path / "bin"
    cred_helper.install(bin_dir, HELPER)
    store, log = tmp_path / "helper-store.json", tmp_path / "helper.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(cred_helper.STORE_ENV, str(store))
    monkeypatch.setenv(cred_helper.LOG_ENV, str(log))
    return {"store": store, "log": log}


def _store_secret(store: Path, host: str, user: str, secret: str) -> None:
    entry = {"Username": user, "Secret": secret}
    # Helpers are asked by host; some callers include the scheme: answer to both spellings.
    store.write_text(json.dumps({host: entry, f"http://{host}": entry, f"https://{host}": entry}))


def _check_access(url: str, credential: Any, repo: str, image: Content) -> None:
    with ContainerRegistryClient(url, credential) as client:
        assert client.get_manifest(repo, "v1").digest == image.digest
        assert [t.name for t in client.list_tag_properties(repo)] == ["v1"]


def _refresh_token(server: Any) -> str:
    """An ACR refresh token from the server's ``/oauth2/exchange`` (what ``az acr login`` stores)."""
    response = httpx.post(
        f"{server.url}/oauth2/exchange",
        data={"grant_type": "access_token", "service": server.host, "access_token": "stand-in-entra-token"},
    )
    response.raise_for_status()
    return response.json()["refresh_token"]


# -- authenticating -----------------------------------------------------------------------------------


def test_auths_entry(server: Any, pushed: Content, repo_name: str, tmp_path: Path) -> None:
    config = _write(tmp_path / "cfg" / "config.json",
                    {"auths": {server.host: {"auth": _auth(*TEST_USER)}}})
    _check_access(server.url, DockerConfigCredential(config), repo_name, pushed)


def test_docker_config_environment_variable(
    server: Any, pushed: Content, repo_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "docker-home"
    _write(config_dir / "config.json", {"auths": {server.host: {"auth": _auth(*TEST_USER)}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    assert docker_config.default_config_path() == config_dir / "config.json"
    _check_access(server.url, DockerConfigCredential(), repo_name, pushed)


async def test_async_client_with_docker_config(server: Any, pushed: Content, repo_name: str, tmp_path: Path) -> None:
    from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient

    config = _write(tmp_path / "config.json", {"auths": {server.host: {"auth": _auth(*TEST_USER)}}})
    async with AsyncContainerRegistryClient(server.url, DockerConfigCredential(config)) as client:
        assert (await client.get_manifest(repo_name, "v1")).digest == pushed.digest


def test_wrong_password_is_an_authentication_error(server: Any, pushed: Content, repo_name: str,
                                                    tmp_path: Path) -> None:
    config = _write(tmp_path / "config.json", {"auths": {server.host: {"auth": _auth(TEST_USER[0], "wrong")}}})
    with ContainerRegistryClient(server.url, DockerConfigCredential(config)) as client, pytest.raises(
        ClientAuthenticationError
    ):
        client.get_manifest(repo_name, "v1")


def test_no_entry_for_the_registry(server: Any, pushed: Content, repo_name: str, tmp_path: Path) -> None:
    config = _write(tmp_path / "config.json", {"auths": {"elsewhere.example:5000": {"auth": _auth(*TEST_USER)}}})
    with ContainerRegistryClient(server.url, DockerConfigCredential(config)) as client, pytest.raises(
        ClientAuthenticationError
    ):
        client.get_manifest(repo_name, "v1")


def test_cred_helpers_entry(server: Any, pushed: Content, repo_name: str, tmp_path: Path,
                            helper: dict[str, Path]) -> None:
    _store_secret(helper["store"], server.host, *TEST_USER)
    config = _write(tmp_path / "config.json", {
        "auths": {server.host: {}},
        "credHelpers": {server.host: HELPER},
    })
    _check_access(server.url, DockerConfigCredential(config), repo_name, pushed)
    calls = helper["log"].read_text().splitlines()
    assert calls and all(call.startswith("get ") and server.host in call for call in calls)


def test_creds_store(server: Any, pushed: Content, repo_name: str, tmp_path: Path, helper: dict[str, Path]) -> None:
    _store_secret(helper["store"], server.host, *TEST_USER)
    config = _write(tmp_path / "config.json", {"credsStore": HELPER})
    _check_access(server.url, DockerConfigCredential(config), repo_name, pushed)
    assert helper["log"].read_text().startswith("get ")


def test_identity_token(dockyard_auth_server: Any, repo_name: str, tmp_path: Path) -> None:
    with httpx.Client(auth=httpx.BasicAuth(*TEST_USER), timeout=60.0) as http:
        image = Seeder(dockyard_auth_server.url, http).image(repo_name, "v1")
    token = _refresh_token(dockyard_auth_server)
    config = _write(tmp_path / "config.json",
                    {"auths": {dockyard_auth_server.host: {"auth": "", "identitytoken": token}}})
    assert docker_config.lookup(dockyard_auth_server.host, config)[1] == token
    _check_access(dockyard_auth_server.url, DockerConfigCredential(config), repo_name, image)


def test_identity_token_from_a_helper(dockyard_auth_server: Any, repo_name: str, tmp_path: Path,
                                      helper: dict[str, Path]) -> None:
    with httpx.Client(auth=httpx.BasicAuth(*TEST_USER), timeout=60.0) as http:
        image = Seeder(dockyard_auth_server.url, http).image(repo_name, "v1")
    _store_secret(helper["store"], dockyard_auth_server.host, "<token>", _refresh_token(dockyard_auth_server))
    config = _write(tmp_path / "config.json", {"credHelpers": {dockyard_auth_server.host: HELPER}})
    _check_access(dockyard_auth_server.url, DockerConfigCredential(config), repo_name, image)


# -- the config helpers -------------------------------------------------------------------------------


def test_write_lookup_remove(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.json", {"psFormat": "table {{.ID}}", "auths": {"other.example": {"auth": "eDp5"}}})
    docker_config.write_auth("127.0.0.1:5000", "alice", "pa:ss", path)
    config = json.loads(path.read_text())
    assert config["psFormat"] == "table {{.ID}}"  # unrelated settings survive
    assert base64.b64decode(config["auths"]["127.0.0.1:5000"]["auth"]).decode() == "alice:pa:ss"
    assert config["auths"]["other.example"] == {"auth": "eDp5"}
    assert docker_config.read_config(path) == config
    assert docker_config.lookup("127.0.0.1:5000", path) == ("alice", "pa:ss")
    assert docker_config.lookup("other.example", path) == ("x", "y")
    assert docker_config.lookup("missing.example", path) is None

    docker_config.write_auth("127.0.0.1:5000", "bob", "new", path)
    assert docker_config.lookup("127.0.0.1:5000", path) == ("bob", "new")
    assert docker_config.remove_auth("127.0.0.1:5000", path) is True
    assert docker_config.remove_auth("127.0.0.1:5000", path) is False
    assert docker_config.lookup("127.0.0.1:5000", path) is None
    assert json.loads(path.read_text())["auths"] == {"other.example": {"auth": "eDp5"}}


def test_write_creates_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "new-dir"))
    docker_config.write_auth("127.0.0.1:5000", "alice", "secret")
    assert (tmp_path / "new-dir" / "config.json").exists()
    assert docker_config.lookup("127.0.0.1:5000") == ("alice", "secret")
    assert docker_config.read_config() == json.loads((tmp_path / "new-dir" / "config.json").read_text())


def test_read_missing_config(tmp_path: Path) -> None:
    assert docker_config.read_config(tmp_path / "absent.json") == {}
    assert docker_config.lookup("127.0.0.1:5000", tmp_path / "absent.json") is None


def test_lookup_through_helpers(tmp_path: Path, helper: dict[str, Path]) -> None:
    _store_secret(helper["store"], "127.0.0.1:6000", "carol", "from-helper")
    path = _write(tmp_path / "config.json", {
        "auths": {"127.0.0.1:6000": {"auth": _auth("stale", "ignored")}},
        "credHelpers": {"127.0.0.1:6000": HELPER},
    })
    # A registry-specific helper wins over a stored auths entry, as in docker.
    assert docker_config.lookup("127.0.0.1:6000", path) == ("carol", "from-helper")
    assert docker_config.lookup("127.0.0.1:6001", path) is None
    store_only = _write(tmp_path / "store.json", {"credsStore": HELPER})
    assert docker_config.lookup("127.0.0.1:6000", store_only) == ("carol", "from-helper")
    assert docker_config.lookup("127.0.0.1:6002", store_only) is None  # helper says "not found"
