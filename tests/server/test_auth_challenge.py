"""The token challenge: built from a validated ``Host`` only, and naming every scope an operation needs (a
cross-repository mount needs pull on its source, so the token flow grants it and the mount answers 201)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from dockyard import ContainerRegistryClient
from dockyard.credentials import BasicCredential
from tests.conftest import TEST_USER, unique
from tests.server.test_auth import bearer, challenge, token_for
from tests.server.test_distribution_api import assert_error
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer
from tests.support.skopeo import Skopeo

BAD_HOSTS = ['evil"x', "a b", "registry.example:99999", "[zz::1]:5000", "x/y", "user@host", "host:", "-a.example",
             "a" * 300, 'x",realm="http://evil']


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_bad_host_header_is_refused_not_echoed(dockyard_auth_server: DockyardServer, host: str) -> None:
    response = httpx.get(f"{dockyard_auth_server.url}/v2/", headers={"Host": host})
    assert_error(response, 400, "UNSUPPORTED")
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("host", ["Registry.Example:5000", "[::1]:5000", "10.1.2.3", "my_registry"])
def test_a_good_host_names_the_realm_and_service(dockyard_auth_server: DockyardServer, host: str) -> None:
    parsed = challenge(httpx.get(f"{dockyard_auth_server.url}/v2/", headers={"Host": host}))
    assert parsed["realm"] == f"http://{host.lower()}/oauth2/token"
    assert parsed["service"] == host.lower()


def test_acr_bodies_take_no_bad_host(dockyard_server: DockyardServer) -> None:
    repo = unique("host")
    push(make_image(seed=repo), dockyard_server.url, repo, tag="v1")
    good = httpx.get(f"{dockyard_server.url}/acr/v1/{repo}", headers={"Host": "registry.example:443"})
    assert good.status_code == 200 and good.json()["registry"] == "registry.example:443"
    bad = httpx.get(f"{dockyard_server.url}/acr/v1/{repo}/_tags", headers={"Host": "<script>"})
    assert_error(bad, 400, "UNSUPPORTED")
    assert "<script>" not in bad.headers.get("content-type", "")


def _mount_url(server: DockyardServer, target: str, digest: str, source: str) -> str:
    return f"{server.url}/v2/{target}/blobs/uploads/?mount={digest}&from={source}"


def test_a_mount_challenge_asks_for_pull_on_the_source(dockyard_auth_server: DockyardServer) -> None:
    """A client that only follows challenges (asks the token service for exactly the challenge's scope) gets
    a token that lets the mount happen."""
    server = dockyard_auth_server
    source, target = unique("mount/src"), unique("mount/dst")
    image = make_image(seed=source)
    push(image, server.url, source, tag="v1", auth=TEST_USER)
    layer = image.blobs[1].digest
    refused = httpx.post(_mount_url(server, target, layer, source))
    scope = challenge(refused)["scope"]
    assert scope is not None and set(scope.split()) == {f"repository:{target}:push", f"repository:{source}:pull"}
    token = token_for(server, scope)
    mounted = httpx.post(_mount_url(server, target, layer, source), headers=bearer(token))
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["Location"] == f"/v2/{target}/blobs/{layer}"
    assert httpx.head(f"{server.url}/v2/{target}/blobs/{layer}", headers=bearer(token)).status_code == 200
    # A token for the target alone is not enough: the challenge names what is missing, as distribution does.
    push_only = token_for(server, f"repository:{target}:push")
    again = httpx.post(_mount_url(server, target, image.blobs[0].digest, source), headers=bearer(push_only))
    assert set(str(challenge(again)["scope"]).split()) == {f"repository:{target}:push", f"repository:{source}:pull"}
    assert again.json()["errors"][0]["detail"] == [{"Type": "repository", "Name": source, "Action": "pull"}]


def test_clients_mount_between_repositories_on_an_auth_server(tmp_path: Path, htpasswd_file: Path) -> None:
    log = tmp_path / "access.log"
    with DockyardServer(tmp_path / "srv", "--htpasswd", str(htpasswd_file), "--access-log", str(log)) as server:
        image = make_image(seed="mount-clients")
        push(image, server.url, "team/src", tag="v1", auth=TEST_USER)
        with ContainerRegistryClient(server.url, BasicCredential(*TEST_USER)) as client:
            assert client.mount_blob("team/sdk", image.blobs[1].digest, "team/src") is True
        skopeo = Skopeo(tmp_path / "skopeo")
        creds = f"{TEST_USER[0]}:{TEST_USER[1]}"
        # skopeo mounts blobs it has seen in another repository of the same registry: the first copy records
        # where the blobs are, the second mounts them.
        for target in ("team/copy", "team/copy2"):
            skopeo.copy(f"docker://{server.host}/team/src:v1", f"docker://{server.host}/{target}:v1",
                        "--src-creds", creds, "--dest-creds", creds)
    mounts = [json.loads(line) for line in log.read_text().splitlines() if "mount=" in line]
    assert ("/v2/team/sdk/blobs/uploads/", 201) in {(m["path"], m["status"]) for m in mounts}
    skopeo_mounts = [m["status"] for m in mounts if m["path"] == "/v2/team/copy2/blobs/uploads/"]
    assert skopeo_mounts and set(skopeo_mounts) <= {201, 401}, mounts
    assert 201 in skopeo_mounts, mounts
