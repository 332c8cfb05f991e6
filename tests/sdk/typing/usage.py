"""A user's script over every method of both clients, type-checked by ``test_type_checking.py``.

Never run: mypy reads it. ``reveal_type`` calls mark the types a user's editor must show.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import reveal_type

from dockyard import (
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactTagOrder,
    ArtifactTagProperties,
    ContainerRegistryClient,
    DownloadBlobStream,
    GetManifestResult,
    RepositoryProperties,
)
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from dockyard.credentials import BasicCredential
from dockyard.oci.manifest import Descriptor


def sync_usage(endpoint: str, target: Path) -> None:
    credential = BasicCredential("user", "pass")
    with ContainerRegistryClient(endpoint, credential, audience="https://x", timeout=5.0) as client:
        has_acr: bool = client.has_acr_api()
        reveal_type(client.list_repository_names())
        names: list[str] = list(client.list_repository_names(results_per_page=10))
        for page in client.list_repository_names().by_page():
            names.extend(page)
        reveal_type(client.get_repository_properties("repo"))
        repo = client.get_repository_properties("repo")
        updated: RepositoryProperties = client.update_repository_properties("repo", repo)
        updated = client.update_repository_properties("repo", can_write=False, can_delete=True)
        client.delete_repository("repo")

        reveal_type(client.list_tag_properties("repo", order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING))
        tag_names = [t.name for t in client.list_tag_properties("repo", order_by="timedesc", results_per_page=2)]
        tag: ArtifactTagProperties = client.get_tag_properties("repo", "v1")
        tag = client.update_tag_properties("repo", "v1", tag)
        reveal_type(client.update_tag_properties("repo", "v1", can_read=True))
        client.delete_tag("repo", "v1")

        order = ArtifactManifestOrder.LAST_UPDATED_ON_ASCENDING
        manifests = list(client.list_manifest_properties("repo", order_by=order))
        props: ArtifactManifestProperties = client.get_manifest_properties("repo", "v1")
        props = client.update_manifest_properties("repo", "v1", props)
        props = client.update_manifest_properties("repo", "v1", can_list=False)
        client.delete_manifest("repo", "v1")
        reveal_type(client.get_manifest("repo", "v1"))
        result: GetManifestResult = client.download_manifest("repo", "v1")
        digest: str = client.set_manifest("repo", result.manifest, tag="v2")
        digest = client.upload_manifest("repo", result.data, media_type=result.media_type)
        digest = client.set_manifest("repo", b"{}", tag=None)
        descriptor: Descriptor = client.get_manifest_descriptor("repo", "v1")
        referrers: list[Descriptor] = client.list_referrers("repo", digest, artifact_type="application/spdx")

        reveal_type(client.upload_blob("repo", b"data"))
        digest, size = client.upload_blob("repo", io.BytesIO(b"data"), progress=lambda n: None)
        digest, size = client.upload_blob("repo", target, digest=digest, size=size)
        reveal_type(client.download_blob("repo", digest))
        stream: DownloadBlobStream = client.download_blob("repo", digest, offset=3, enforce_https=False)
        data = b"".join(stream)
        written: int = client.download_blob_to_file("repo", digest, target, progress=print)
        exists: bool = client.blob_exists("repo", digest)
        mounted: bool = client.mount_blob("repo", digest, "other")
        client.delete_blob("repo", digest)
        print(client.endpoint, has_acr, names, updated, tag_names, manifests, descriptor, referrers, data, written,
              exists, mounted)
    client.close()


async def async_usage(endpoint: str, target: Path) -> None:
    async with AsyncContainerRegistryClient(endpoint, None, max_concurrency=2) as client:
        has_acr: bool = await client.has_acr_api()
        reveal_type(client.list_repository_names())
        names = [name async for name in client.list_repository_names(results_per_page=10)]
        async for page in client.list_repository_names().by_page():
            names.extend([name async for name in page])
        pending = reveal_type(client.get_repository_properties("repo"))
        repo = await pending
        updated: RepositoryProperties = await client.update_repository_properties("repo", repo)
        updated = await client.update_repository_properties("repo", can_write=False)
        await client.delete_repository("repo")

        reveal_type(client.list_tag_properties("repo"))
        order = ArtifactTagOrder.LAST_UPDATED_ON_ASCENDING
        tags = [t async for t in client.list_tag_properties("repo", order_by=order)]
        tag = await client.get_tag_properties("repo", "v1")
        tag = await client.update_tag_properties("repo", "v1", tag)
        tag = await client.update_tag_properties("repo", "v1", can_delete=False)
        await client.delete_tag("repo", "v1")

        manifests = [m async for m in client.list_manifest_properties("repo", results_per_page=5)]
        props = await client.get_manifest_properties("repo", "v1")
        props = await client.update_manifest_properties("repo", "v1", props)
        props = await client.update_manifest_properties("repo", "v1", can_read=False)
        await client.delete_manifest("repo", "v1")
        result = await client.get_manifest("repo", "v1")
        result = await client.download_manifest("repo", "v1")
        digest = await client.set_manifest("repo", {"schemaVersion": 2}, tag="v2")
        digest = await client.upload_manifest("repo", result.content or b"")
        descriptor = await client.get_manifest_descriptor("repo", digest)
        referrers = await client.list_referrers("repo", digest)

        reveal_type(await client.upload_blob("repo", str(target)))
        digest, size = await client.upload_blob("repo", b"data", progress=print)
        reveal_type(await client.download_blob("repo", digest))
        stream = await client.download_blob("repo", digest)
        data = b"".join([chunk async for chunk in stream])
        written = await client.download_blob_to_file("repo", digest, str(target))
        exists = await client.blob_exists("repo", digest)
        mounted = await client.mount_blob("repo", digest, "other")
        await client.delete_blob("repo", digest)
        print(client.endpoint, has_acr, names, updated, tags, tag, manifests, props, descriptor, referrers, size,
              data, written, exists, mounted)
    await client.close()


if __name__ == "__main__":
    sync_usage("http://127.0.0.1:5000", Path("blob"))
    asyncio.run(async_usage("http://127.0.0.1:5000", Path("blob")))
