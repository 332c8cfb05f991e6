"""Repository-scoped tokens made by ``dockyard token create`` (while a real ``dockyard serve`` runs on the same data
directory) used by real clients: dockyard's CLI (``login``, ``push``, listings), skopeo (``--creds``) and Microsoft's
``azure-containerregistry``. Each may do what the token's actions allow, and is refused the rest."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.layout import OCILayout
from tests.cli.conftest import Cli
from tests.conftest import unique
from tests.support.images import make_image, push
from tests.support.peers import require_module, require_program
from tests.support.servers import DockyardServer, subprocess_env, write_htpasswd
from tests.support.skopeo import Skopeo

ADMIN = ("admin", "admin-pass")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    work = tmp_path_factory.mktemp("token-clients")
    htpasswd = write_htpasswd(work / "htpasswd", {ADMIN[0]: ADMIN[1]})
    with DockyardServer(work, "--htpasswd", str(htpasswd), "--login-failure-limit", "0") as running:
        yield running  # type: ignore[misc]


def create_token(cli: Cli, server: DockyardServer, *flags: str) -> tuple[str, str]:
    name = unique("tok").replace("-", "")[-40:]
    created = cli("token", "create", name, *flags, "--data-dir", str(server.data_dir), "-o", "json").ok().json()
    assert created["name"] == name and len(created["password"]) >= 40
    return name, created["password"]


def seeded_repo(server: DockyardServer, prefix: str) -> str:
    repo = unique(prefix)
    push(make_image(seed=repo, layers=1, layer_size=100), server.url, repo, "v1", auth=ADMIN)
    return repo


def test_dockyard_cli_as_a_token(cli: Cli, server: DockyardServer, tmp_path: Path) -> None:
    readable, writable = seeded_repo(server, "cli/read"), seeded_repo(server, "cli/write")
    name, password = create_token(cli, server, "--scope", f"{readable}:content/read,metadata/read",
                                  "--scope", f"{writable}:content/read,content/write,metadata/read")
    reg = server.host
    assert "authentication" in cli("login", reg, "-u", name, "--password-stdin", input="wrong\n").failed(1).stderr
    cli("login", reg, "-u", name, "--password-stdin", input=password + "\n").ok()
    listed = [r["name"] for r in cli("repo", "list", "-r", reg, "-o", "json").ok().json()]
    assert sorted(listed) == sorted([readable, writable])  # the catalog shows only what the token may read
    assert [t["name"] for t in cli("tag", "list", "-r", reg, readable, "-o", "json").ok().json()] == ["v1"]
    (tmp_path / "notes.txt").write_text("hello")
    cli("push", "-r", reg, f"{writable}:v2", "notes.txt").ok()
    refused = cli("push", "-r", reg, f"{readable}:v2", "notes.txt").failed(1)
    assert "content/write" in refused.stderr
    assert "content/delete" in cli("tag", "delete", "-r", reg, f"{writable}:v2").failed(1).stderr

    cli("token", "disable", name, "--data-dir", str(server.data_dir)).ok()
    cli("tag", "list", "-r", reg, readable).failed(1)  # at once, no restart
    cli("token", "enable", name, "--data-dir", str(server.data_dir)).ok()
    cli("tag", "list", "-r", reg, readable).ok()
    cli("token", "delete", name, "--data-dir", str(server.data_dir)).ok()
    cli("tag", "list", "-r", reg, readable).failed(1)


def test_skopeo_with_token_credentials(cli: Cli, server: DockyardServer, tmp_path: Path) -> None:
    skopeo = Skopeo(tmp_path / "skopeo")
    readable = seeded_repo(server, "skopeo/read")
    target = unique("skopeo/push")
    puller = create_token(cli, server, "--scope-map", "_repositories_pull")
    pusher = create_token(cli, server, "--scope", f"{target}:content/read,content/write")
    source = f"docker://{server.host}/{readable}:v1"
    layout = tmp_path / "layout"
    skopeo.copy(source, f"oci:{layout}:v1", f"--src-creds={puller[0]}:{puller[1]}")
    assert OCILayout(layout).resolve("v1")
    refused = skopeo.run("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                         f"--dest-creds={puller[0]}:{puller[1]}", f"oci:{layout}:v1",
                         f"docker://{server.host}/{target}:v1", check=False)
    assert refused.returncode != 0
    skopeo.copy(f"oci:{layout}:v1", f"docker://{server.host}/{target}:v1", f"--dest-creds={pusher[0]}:{pusher[1]}")
    with httpx.Client(auth=ADMIN) as http:
        assert http.get(f"{server.url}/v2/{target}/tags/list").json()["tags"] == ["v1"]


class RefreshTokenCredential:
    """A credential for Microsoft's SDK whose ``get_token`` returns a dockyard refresh token, obtained by logging in
    with a repository-scoped token's name and password (the SDK trades it at ``/oauth2/exchange``)."""

    def __init__(self, url: str, name: str, password: str) -> None:
        self.url, self.name, self.password = url, name, password

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        service = self.url.split("://", 1)[1]
        response = httpx.post(f"{self.url}/oauth2/token", data={
            "grant_type": "password", "username": self.name, "password": self.password, "access_type": "offline",
            "service": service})
        response.raise_for_status()
        return AccessToken(response.json()["refresh_token"], int(time.time()) + 3600)


def test_azure_sdk_with_a_token(cli: Cli, server: DockyardServer) -> None:
    require_module("azure.containerregistry", "azure-containerregistry==1.2.0")
    from azure.containerregistry import ContainerRegistryClient
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    readable, other = seeded_repo(server, "azsdk/read"), seeded_repo(server, "azsdk/other")
    name, password = create_token(cli, server, "--scope", f"{readable}:content/read,metadata/read,metadata/write")
    e: dict[str, Any] = {"enforce_https": False}
    with ContainerRegistryClient(server.url, RefreshTokenCredential(server.url, name, password)) as client:
        assert list(client.list_repository_names(**e)) == [readable]
        assert [t.name for t in client.list_tag_properties(readable, **e)] == ["v1"]
        assert client.get_manifest(readable, "v1", **e).digest
        client.update_repository_properties(readable, can_delete=False, **e)
        with pytest.raises((ClientAuthenticationError, HttpResponseError)) as refused:
            client.delete_tag(readable, "v1", **e)
        assert refused.value.status_code in (401, 403)
        with pytest.raises((ClientAuthenticationError, HttpResponseError)):
            client.get_repository_properties(other, **e)
        with pytest.raises((ClientAuthenticationError, HttpResponseError)):
            client.upload_blob(readable, io.BytesIO(b"nope"), **e)


def test_podman_login_with_a_token(cli: Cli, server: DockyardServer, tmp_path: Path) -> None:
    podman = require_program("podman", "podman")
    name, password = create_token(cli, server, "--scope-map", "_repositories_pull")
    env = {**subprocess_env(), "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def login(secret: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([podman, "login", "--authfile", str(tmp_path / "auth.json"), "--tls-verify=false",
                               "-u", name, "--password-stdin", server.host], input=secret, env=env,
                              capture_output=True, text=True, timeout=60)

    assert login("wrong").returncode != 0
    assert login(password).returncode == 0, login(password).stderr
    cli("token", "delete", name, "--data-dir", str(server.data_dir)).ok()
    assert login(password).returncode != 0
