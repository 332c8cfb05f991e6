"""Which credential a command uses (flags, environment, docker config, host), and the Entra ID path end to end
with a stand-in for azure-identity's ``DefaultAzureCredential`` against ``dockyard serve --accept-any-aad-token``.

Nothing here contacts a network beyond the loopback registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import ContainerRegistryClient
from dockyard.cli.connect import credential_for
from dockyard.cli.credential_choice import CredentialSource, choose_credential, is_acr_host
from dockyard.cli.errors import UsageError
from dockyard.cli.options import GlobalOptions
from tests.support.credentials import CountingCredential
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

ACR = "myregistry.azurecr.io"
ARGS, CONFIG, ENTRA, ANON = (CredentialSource.arguments, CredentialSource.docker_config, CredentialSource.entra_id,
                             CredentialSource.anonymous)


@pytest.mark.parametrize(
    ("host", "username", "env", "in_config", "azure_identity", "expected"),
    [
        # Flags win over everything.
        (ACR, "me", {"DOCKYARD_ENTRA_ID": "1"}, True, True, ARGS),
        ("127.0.0.1:5000", "me", {}, False, False, ARGS),
        # A forced Entra ID beats the docker config, on any host.
        (ACR, None, {"DOCKYARD_ENTRA_ID": "1"}, True, True, ENTRA),
        ("registry.example.com", None, {"DOCKYARD_ENTRA_ID": "true"}, False, True, ENTRA),
        # The docker config beats the automatic Entra ID of ACR hosts.
        (ACR, None, {}, True, True, CONFIG),
        ("127.0.0.1:5000", None, {}, True, False, CONFIG),
        # ACR hosts (public and sovereign clouds, any case, with a port) get Entra ID when azure-identity is there.
        (ACR, None, {}, False, True, ENTRA),
        ("MyRegistry.AzureCR.io:443", None, {}, False, True, ENTRA),
        ("reg.azurecr.cn", None, {}, False, True, ENTRA),
        ("reg.azurecr.us", None, {"DOCKYARD_ENTRA_ID": ""}, False, True, ENTRA),
        # ... and not without it, not when switched off, not for look-alike hosts.
        (ACR, None, {}, False, False, ANON),
        (ACR, None, {"DOCKYARD_ENTRA_ID": "0"}, False, True, ANON),
        ("azurecr.io.example.com", None, {}, False, True, ANON),
        ("notazurecr.io", None, {}, False, True, ANON),
        ("127.0.0.1:5000", None, {}, False, True, ANON),
    ],
)
def test_choice(host: str, username: str | None, env: dict[str, str], in_config: bool, azure_identity: bool,
                expected: CredentialSource) -> None:
    assert choose_credential(host, username=username, env=env, in_docker_config=in_config,
                             azure_identity=azure_identity) is expected


def test_forced_entra_without_azure_identity_or_with_a_bad_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="azure-identity"):
        choose_credential(ACR, username=None, env={"DOCKYARD_ENTRA_ID": "1"}, in_docker_config=False,
                          azure_identity=False)
    with pytest.raises(UsageError, match="expected 1 or 0"):
        choose_credential(ACR, username=None, env={"DOCKYARD_ENTRA_ID": "maybe"}, in_docker_config=False,
                          azure_identity=True)


def test_acr_hosts() -> None:
    assert is_acr_host("a.azurecr.io") and is_acr_host("a.azurecr.io:443") and is_acr_host("A.AZURECR.US")
    assert not is_acr_host("azurecr.io") and not is_acr_host("a.azurecr.io.evil.example") and not is_acr_host("[::1]")


def test_entra_credential_reaches_the_registry(dockyard_auth_server: DockyardServer, repo_name: str) -> None:
    """The credential chosen for DOCKYARD_ENTRA_ID=1 is the one the factory made, and the client exchanges its
    token for registry access."""
    from tests.conftest import TEST_USER

    push(make_image(seed=repo_name), dockyard_auth_server.url, repo_name, "v1", auth=TEST_USER)
    stand_in = CountingCredential()
    credential = credential_for(GlobalOptions(), dockyard_auth_server.url, env={"DOCKYARD_ENTRA_ID": "1"},
                                entra_credential=lambda: stand_in, azure_identity=True)
    assert credential is stand_in
    with ContainerRegistryClient(dockyard_auth_server.url, credential) as client:
        assert [t.name for t in client.list_tag_properties(repo_name)] == ["v1"]
    assert stand_in.count >= 1 and all(s[0].endswith("/.default") for s in stand_in.calls)


def test_no_entra_credential_for_other_hosts(
    dockyard_server: DockyardServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # an empty docker config
    def refuse() -> None:
        raise AssertionError("an Entra ID credential was made for a non-ACR host")

    assert credential_for(GlobalOptions(), dockyard_server.url, env={}, entra_credential=refuse,
                          azure_identity=True) is None
