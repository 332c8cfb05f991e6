'''Every example of the azure-containerregistry usage guide, run against ``dockyard serve``.

The examples are kept below as text, exactly as the guide has them. Before running one, only its imports
change: ``azure.containerregistry`` becomes ``dockyard`` and ``azure.identity``'s ``DefaultAzureCredential``
becomes a stand-in credential object with ``get_token``. Placeholder digests (``sha256:abc123...``) are
replaced by real ones. Each example runs twice: anonymously against a server without auth, and with the
stand-in credential against a server with ``--htpasswd … --accept-any-aad-token``. The printed output and the
registry's state afterwards are checked.
'''

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockyard import ContainerRegistryClient, ResourceNotFoundError
from dockyard.oci.mediatypes import OCI_MANIFEST
from tests.conftest import TEST_USER
from tests.sdk.conftest import Seeder
from tests.support.credentials import AsyncCountingCredential, CountingCredential
from tests.support.images import Content
from tests.support.servers import DockyardServer

REPO = "my-image"

EXAMPLES: dict[str, str] = {
    "entra_id": """
from azure.containerregistry import ContainerRegistryClient
from azure.identity import DefaultAzureCredential

client = ContainerRegistryClient(
    endpoint=os.environ["AZURE_CONTAINERREGISTRY_ENDPOINT"],
    credential=DefaultAzureCredential()
)
""",
    "anonymous": """
from azure.containerregistry import ContainerRegistryClient

client = ContainerRegistryClient(
    endpoint="https://mcr.microsoft.com",
    credential=None,
    audience="https://mcr.microsoft.com"
)
""",
    "list_repositories": """
client = ContainerRegistryClient(endpoint, DefaultAzureCredential())

for repository in client.list_repository_names():
    print(repository)
""",
    "get_repository_properties": """
properties = client.get_repository_properties("my-image")
print(f"Created: {properties.created_on}")
print(f"Modified: {properties.last_updated_on}")
print(f"Manifests: {properties.manifest_count}")
print(f"Tags: {properties.tag_count}")
""",
    "update_repository_properties": """
from azure.containerregistry import RepositoryProperties

client.update_repository_properties(
    "my-image",
    properties=RepositoryProperties(
        can_delete=False,
        can_write=False
    )
)
""",
    "delete_repository": """
client.delete_repository("my-image")
""",
    "list_tags": """
for tag in client.list_tag_properties("my-image"):
    print(f"{tag.name}: {tag.created_on}")
""",
    "list_tags_ordered": """
from azure.containerregistry import ArtifactTagOrder

# Most recent first
for tag in client.list_tag_properties(
    "my-image",
    order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING
):
    print(f"{tag.name}: {tag.last_updated_on}")
""",
    "list_manifests": """
from azure.containerregistry import ArtifactManifestOrder

for manifest in client.list_manifest_properties(
    "my-image",
    order_by=ArtifactManifestOrder.LAST_UPDATED_ON_DESCENDING
):
    print(f"Digest: {manifest.digest}")
    print(f"Tags: {manifest.tags}")
    print(f"Size: {manifest.size_in_bytes}")
""",
    "get_manifest_properties": """
manifest = client.get_manifest_properties("my-image", "latest")
print(f"Digest: {manifest.digest}")
print(f"Architecture: {manifest.architecture}")
print(f"OS: {manifest.operating_system}")
""",
    "update_manifest_properties": """
from azure.containerregistry import ArtifactManifestProperties

client.update_manifest_properties(
    "my-image",
    "latest",
    properties=ArtifactManifestProperties(
        can_delete=False,
        can_write=False
    )
)
""",
    "delete_manifest": """
# Delete by digest
client.delete_manifest("my-image", "sha256:abc123...")

# Delete by tag
manifest = client.get_manifest_properties("my-image", "old-tag")
client.delete_manifest("my-image", manifest.digest)
""",
    "get_tag_properties": """
tag = client.get_tag_properties("my-image", "latest")
print(f"Digest: {tag.digest}")
print(f"Created: {tag.created_on}")
""",
    "delete_tag": """
client.delete_tag("my-image", "old-tag")
""",
    "upload_and_download": """
from azure.containerregistry import ContainerRegistryClient

client = ContainerRegistryClient(endpoint, DefaultAzureCredential())

# Download manifest
manifest = client.download_manifest("my-image", "latest")
print(f"Media type: {manifest.media_type}")
print(f"Digest: {manifest.digest}")

# Download blob
blob = client.download_blob("my-image", "sha256:abc123...")
with open("layer.tar.gz", "wb") as f:
    for chunk in blob:
        f.write(chunk)
""",
    "async_client": """
from azure.containerregistry.aio import ContainerRegistryClient
from azure.identity.aio import DefaultAzureCredential

async def list_repos():
    credential = DefaultAzureCredential()
    client = ContainerRegistryClient(endpoint, credential)

    async for repo in client.list_repository_names():
        print(repo)

    await client.close()
    await credential.close()
""",
    "clean_up": """
from datetime import datetime, timedelta, timezone

cutoff = datetime.now(timezone.utc) - timedelta(days=30)

for manifest in client.list_manifest_properties("my-image"):
    if manifest.last_updated_on < cutoff and not manifest.tags:
        print(f"Deleting {manifest.digest}")
        client.delete_manifest("my-image", manifest.digest)
""",
}

_IMPORTS = [
    ("from azure.containerregistry.aio import", "from dockyard.aio import"),
    ("from azure.containerregistry import", "from dockyard import"),
    ("from azure.identity.aio import DefaultAzureCredential", "# DefaultAzureCredential: the async stand-in"),
    ("from azure.identity import DefaultAzureCredential", "# DefaultAzureCredential: the stand-in"),
]


def port(code: str, placeholder: str | None = None) -> str:
    """The example with only its imports changed (and the placeholder digest made real)."""
    for old, new in _IMPORTS:
        code = code.replace(old, new)
    assert "azure" not in code.replace("AZURE_CONTAINERREGISTRY_ENDPOINT", "").replace("DefaultAzureCredential", "")
    if placeholder is not None:
        code = code.replace("sha256:abc123...", placeholder)
    assert "abc123" not in code
    return code


@dataclass
class Registry:
    """What the examples run against in one mode."""

    mode: str
    server: DockyardServer
    content: dict[str, Content]
    credentials: list[Any]

    def credential_factory(self, is_async: bool = False) -> Any:
        def make() -> Any:
            credential = AsyncCountingCredential() if is_async else CountingCredential()
            self.credentials.append(credential)
            return credential

        return make

    def client_credential(self) -> Any:
        return self.credential_factory()() if self.mode == "entra" else None


@pytest.fixture(params=["anonymous", "entra"])
def registry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Registry]:
    """``my-image`` freshly seeded: v1, v2, latest (arm64), old-tag, plus one untagged manifest."""
    if request.param == "anonymous":
        server = request.getfixturevalue("dockyard_server")
        auth = None
    else:
        server = request.getfixturevalue("dockyard_auth_server")
        auth = TEST_USER
    monkeypatch.setenv("AZURE_CONTAINERREGISTRY_ENDPOINT", server.url)
    monkeypatch.chdir(tmp_path)
    import httpx

    with httpx.Client(auth=httpx.BasicAuth(*auth) if auth else None, timeout=60.0) as http:
        # Start from an empty my-image (an earlier run may have left it locked).
        with ContainerRegistryClient(server.url, CountingCredential() if auth else None) as admin:
            try:
                admin.update_repository_properties(REPO, can_delete=True, can_write=True)
                for manifest in admin.list_manifest_properties(REPO):
                    admin.update_manifest_properties(REPO, manifest.digest, can_delete=True, can_write=True)
                admin.delete_repository(REPO)
            except ResourceNotFoundError:
                pass
        seeder = Seeder(server.url, http)
        content = {"untagged": seeder.image(REPO, None, created="2023-01-01T00:00:00Z")}
        content["v1"] = seeder.image(REPO, "v1", created="2024-01-01T00:00:00Z")
        content["v2"] = seeder.image(REPO, "v2", created="2024-02-01T00:00:00Z")
        content["latest"] = seeder.image(REPO, "latest", architecture="arm64", created="2024-03-01T00:00:00Z")
        content["old-tag"] = seeder.image(REPO, "old-tag", created="2020-01-01T00:00:00Z")
    yield Registry(request.param, server, content, [])


def run(registry: Registry, name: str, placeholder: str | None = None, **names: Any) -> dict[str, Any]:
    """Execute example ``name``; returns its namespace (``client`` and whatever else it defined)."""
    namespace: dict[str, Any] = {
        "os": os,
        # Imported by the guide's earlier examples (``from azure.containerregistry import ContainerRegistryClient``).
        "ContainerRegistryClient": ContainerRegistryClient,
        "endpoint": registry.server.url,
        "DefaultAzureCredential": registry.credential_factory(is_async="aio" in EXAMPLES[name]),
        **names,
    }
    exec(compile(port(EXAMPLES[name], placeholder), f"<example {name}>", "exec"), namespace)
    return namespace


@pytest.fixture
def client(registry: Registry) -> Iterator[ContainerRegistryClient]:
    """The ``client`` the short examples assume exists."""
    with ContainerRegistryClient(registry.server.url, registry.client_credential()) as c:
        yield c


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_every_example_is_covered() -> None:
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert set(EXAMPLES) <= tested


def test_entra_id(registry: Registry) -> None:
    ns = run(registry, "entra_id")
    with ns["client"] as client:
        assert REPO in list(client.list_repository_names())
    assert len(registry.credentials) == 1
    if registry.mode == "entra":
        assert registry.credentials[0].count == 1
        assert registry.credentials[0].calls[0] == ("https://containerregistry.azure.net/.default",)


def test_anonymous(registry: Registry) -> None:
    ns = run(registry, "anonymous")  # builds the client only: no request leaves the machine
    ns["client"].close()
    # The same construction against the local server works for reads.
    with ContainerRegistryClient(
        endpoint=registry.server.url, credential=None, audience="https://mcr.microsoft.com"
    ) as client:
        if registry.mode == "anonymous":
            assert client.get_tag_properties(REPO, "latest").digest == registry.content["latest"].digest


def test_list_repositories(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    ns = run(registry, "list_repositories")
    ns["client"].close()
    assert REPO in lines(capsys)


def test_get_repository_properties(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "get_repository_properties", client=client)
    out = lines(capsys)
    assert out[2:] == ["Manifests: 5", "Tags: 4"]
    assert re.fullmatch(r"Created: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00", out[0])
    assert out[1].startswith("Modified: 20")


def test_update_repository_properties(registry: Registry, client: Any) -> None:
    run(registry, "update_repository_properties", client=client)
    properties = client.get_repository_properties(REPO)
    assert (properties.can_delete, properties.can_write, properties.can_read, properties.can_list) == (
        False, False, True, True
    )
    client.update_repository_properties(REPO, can_delete=True, can_write=True)


def test_delete_repository(registry: Registry, client: Any) -> None:
    run(registry, "delete_repository", client=client)
    with pytest.raises(ResourceNotFoundError):
        client.get_repository_properties(REPO)
    assert REPO not in list(client.list_repository_names())


def test_list_tags(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "list_tags", client=client)
    names = sorted(line.split(": ")[0] for line in lines(capsys))
    assert names == ["latest", "old-tag", "v1", "v2"]


def test_list_tags_ordered(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "list_tags_ordered", client=client)
    out = lines(capsys)
    # The server's last-updated time is the push time: newest push first.
    assert [line.split(": ")[0] for line in out] == ["old-tag", "latest", "v2", "v1"]


def test_list_manifests(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "list_manifests", client=client)
    out = lines(capsys)
    content = registry.content
    order = ["old-tag", "latest", "v2", "v1", "untagged"]
    assert out[0::3] == [f"Digest: {content[name].digest}" for name in order]
    assert out[1::3] == ["Tags: ['old-tag']", "Tags: ['latest']", "Tags: ['v2']", "Tags: ['v1']", "Tags: []"]
    assert all(int(line.removeprefix("Size: ")) >= content["v1"].size for line in out[2::3])


def test_get_manifest_properties(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "get_manifest_properties", client=client)
    assert lines(capsys) == [f"Digest: {registry.content['latest'].digest}", "Architecture: arm64", "OS: linux"]


def test_update_manifest_properties(registry: Registry, client: Any) -> None:
    run(registry, "update_manifest_properties", client=client)
    manifest = client.get_manifest_properties(REPO, "latest")
    assert (manifest.can_delete, manifest.can_write, manifest.can_read) == (False, False, True)
    client.update_manifest_properties(REPO, "latest", can_delete=True, can_write=True)
    assert client.get_manifest_properties(REPO, "latest").can_delete is True


def test_delete_manifest(registry: Registry, client: Any) -> None:
    untagged, old = registry.content["untagged"].digest, registry.content["old-tag"].digest
    run(registry, "delete_manifest", placeholder=untagged, client=client)
    for digest in (untagged, old):
        with pytest.raises(ResourceNotFoundError):
            client.get_manifest_properties(REPO, digest)
    with pytest.raises(ResourceNotFoundError):
        client.get_tag_properties(REPO, "old-tag")
    assert client.get_repository_properties(REPO).manifest_count == 3


def test_get_tag_properties(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "get_tag_properties", client=client)
    out = lines(capsys)
    assert out[0] == f"Digest: {registry.content['latest'].digest}"
    assert out[1].startswith("Created: 20") and out[1].endswith("+00:00")


def test_delete_tag(registry: Registry, client: Any) -> None:
    run(registry, "delete_tag", client=client)
    with pytest.raises(ResourceNotFoundError):
        client.get_tag_properties(REPO, "old-tag")
    # Untagged, not deleted: the manifest is still there by digest.
    assert client.get_manifest_properties(REPO, registry.content["old-tag"].digest).tags == []
    assert sorted(t.name for t in client.list_tag_properties(REPO)) == ["latest", "v1", "v2"]


def test_upload_and_download(registry: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    latest = registry.content["latest"]
    layer = latest.blobs[1]
    ns = run(registry, "upload_and_download", placeholder=layer.digest)
    ns["client"].close()
    assert lines(capsys) == [f"Media type: {OCI_MANIFEST}", f"Digest: {latest.digest}"]
    assert ns["manifest"].manifest == latest.json
    assert ns["manifest"].data.read() == latest.body
    assert (tmp_path / "layer.tar.gz").read_bytes() == layer.data


def test_async_client(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    ns = run(registry, "async_client")
    asyncio.run(ns["list_repos"]())
    assert REPO in lines(capsys)
    (credential,) = registry.credentials
    assert isinstance(credential, AsyncCountingCredential)
    assert credential.closed
    if registry.mode == "entra":
        assert credential.count == 1


def test_clean_up(registry: Registry, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(registry, "clean_up", client=client)
    assert lines(capsys) == []  # everything was pushed just now: nothing is 30 days old
    assert client.get_repository_properties(REPO).manifest_count == 5

    # The same loop with the cutoff moved into the future removes exactly the untagged manifest.
    future = EXAMPLES["clean_up"].replace("timedelta(days=30)", "timedelta(days=-1)")
    namespace: dict[str, Any] = {"client": client}
    exec(compile(port(future), "<example clean_up, future cutoff>", "exec"), namespace)
    assert lines(capsys) == [f"Deleting {registry.content['untagged'].digest}"]
    remaining = {m.digest for m in client.list_manifest_properties(REPO)}
    assert remaining == {registry.content[name].digest for name in ("v1", "v2", "latest", "old-tag")}
