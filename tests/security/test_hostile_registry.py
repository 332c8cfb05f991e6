"""The SDK and the CLI against a malicious registry (a tiny loopback server of this test run).

- Endless bodies: a manifest is read up to 4 MiB, a blob up to its descriptor's (or declared) size, then
  ``ResponseTooLargeError``; nothing is left on disk. The server counts what it managed to send, which shows
  the client stopped reading (socket buffers on loopback hold a few MiB at most).
- Endless paging: a ``Link`` that comes back, or pages past ``max_pages``, raise ``PagingError``.
- Deep nesting: a 1,200-deep chain of indexes and a deeply nested JSON manifest are one-line errors.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import ContainerRegistryClient
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from dockyard.errors import PagingError, ResponseTooLargeError
from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from dockyard.oci.manifest import InvalidManifestError
from tests.cli.conftest import Cli, cli, cli_env  # noqa: F401 - the CLI fixtures, shared with tests/cli
from tests.support.hostile_registry import HostileRegistry, Reply, endless
from tests.support.servers import DockyardServer

MiB = 1024 * 1024
#: What a client that stopped at its limit lets through: the limit plus loopback socket buffers.
SLACK = 24 * MiB
#: The hostile server gives up after this much, so a client without limits fails the test instead of hanging.
CAP = 96 * MiB

LAYER_SIZE = 1000
LAYER_DIGEST = compute_digest(b"L" * LAYER_SIZE)
EMPTY = b"{}"
EMPTY_DIGEST = compute_digest(EMPTY)


def manifest_with_layer(title: str | None = None) -> bytes:
    layer: dict[str, object] = {"mediaType": mt.OCI_LAYER, "digest": LAYER_DIGEST, "size": LAYER_SIZE}
    if title:
        layer["annotations"] = {"org.opencontainers.image.title": title}
    document = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": "application/vnd.example",
        "config": {"mediaType": mt.OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}, "layers": [layer],
    }
    return json.dumps(document).encode()


def manifest_reply(body: bytes) -> Reply:
    return Reply(200, {"Content-Type": mt.OCI_MANIFEST, "Docker-Content-Digest": compute_digest(body)}, body)


def endless_blob_registry(head_length: int | None = None, title: str | None = "notes.txt") -> HostileRegistry:
    """Serves ``evil:v1`` (one layer of 1000 bytes) whose layer blob never ends; ``HEAD`` of the blob tells
    ``head_length`` (or no length)."""
    manifest = manifest_with_layer(title)

    def route(method: str, path: str) -> Reply | None:
        if path.startswith("/v2/evil/manifests/"):
            return manifest_reply(manifest)
        if path == f"/v2/evil/blobs/{EMPTY_DIGEST}":
            return Reply(200, {}, EMPTY)
        if path == f"/v2/evil/blobs/{LAYER_DIGEST}":
            if method == "HEAD":
                return Reply(200, {"Content-Length": str(head_length)} if head_length is not None else {}, endless())
            return Reply(200, {"Content-Type": "application/octet-stream"}, endless())
        if path == "/v2/":
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        return None

    return HostileRegistry(route, cap=CAP)


def sent_for_blob(registry: HostileRegistry) -> int:
    return sum(n for path, n in registry.sent.items() if LAYER_DIGEST in path)


# -- manifests -----------------------------------------------------------------------------------------------


@pytest.fixture
def endless_manifest() -> Iterator[HostileRegistry]:
    def route(method: str, path: str) -> Reply | None:
        if path.startswith("/v2/evil/manifests/"):
            return Reply(200, {"Content-Type": mt.OCI_MANIFEST}, endless(b" " * 65536))
        return None

    with HostileRegistry(route, cap=CAP) as registry:
        yield registry


def test_endless_manifest_stops_at_4_mib_sync(endless_manifest: HostileRegistry) -> None:
    with ContainerRegistryClient(endless_manifest.url, None, retry_total=0) as client, pytest.raises(
        ResponseTooLargeError, match="4MB"
    ):
        client.get_manifest("evil", "v1")
    assert endless_manifest.sent["/v2/evil/manifests/v1"] < mt.MAX_MANIFEST_SIZE + SLACK


def test_endless_manifest_stops_at_4_mib_async(endless_manifest: HostileRegistry) -> None:
    async def main() -> None:
        async with AsyncContainerRegistryClient(endless_manifest.url, None, retry_total=0) as client:
            with pytest.raises(ResponseTooLargeError):
                await client.get_manifest("evil", "v1")

    asyncio.run(main())
    assert endless_manifest.sent["/v2/evil/manifests/v1"] < mt.MAX_MANIFEST_SIZE + SLACK


def test_endless_manifest_cli(cli: Cli, endless_manifest: HostileRegistry) -> None:  # noqa: F811
    result = cli("manifest", "get", "-r", endless_manifest.host, "evil:v1").failed()
    assert "4MB" in result.stderr
    assert endless_manifest.sent["/v2/evil/manifests/v1"] < mt.MAX_MANIFEST_SIZE + SLACK


def test_deeply_nested_manifest_json_is_an_error(cli: Cli) -> None:  # noqa: F811
    body = b"[" * 200_000 + b"]" * 200_000

    def route(method: str, path: str) -> Reply | None:
        return manifest_reply(body) if path.startswith("/v2/evil/manifests/") else None

    with HostileRegistry(route) as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0) as client, pytest.raises(
            InvalidManifestError
        ):
            client.get_manifest("evil", "v1")
        result = cli("manifest", "get", "-r", registry.host, "evil:v1").failed()
    assert "nested" in result.stderr


# -- blobs ---------------------------------------------------------------------------------------------------


def test_endless_blob_stream_stops_at_the_descriptor_size() -> None:
    with endless_blob_registry() as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0) as client, pytest.raises(
            ResponseTooLargeError, match=f"more than its {LAYER_SIZE} bytes"
        ):
            for _ in client.download_blob("evil", LAYER_DIGEST, size=LAYER_SIZE):
                pass
        assert sent_for_blob(registry) < LAYER_SIZE + SLACK


def test_endless_blob_stream_async_without_size_uses_the_declared_size() -> None:
    async def main(url: str) -> None:
        async with AsyncContainerRegistryClient(url, None, retry_total=0) as client:
            stream = await client.download_blob("evil", LAYER_DIGEST)
            with pytest.raises(ResponseTooLargeError):
                async for _ in stream:
                    pass

    with endless_blob_registry(head_length=LAYER_SIZE) as registry:
        asyncio.run(main(registry.url))
        assert sent_for_blob(registry) < LAYER_SIZE + SLACK


def test_blob_of_untold_size_is_not_read() -> None:
    with endless_blob_registry(head_length=None) as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0) as client, pytest.raises(
            ResponseTooLargeError, match="does not tell its size"
        ):
            for _ in client.download_blob("evil", LAYER_DIGEST):
                pass
        assert sent_for_blob(registry) < SLACK


@pytest.mark.parametrize("size", [LAYER_SIZE, None])
def test_endless_blob_to_file_leaves_nothing(tmp_path: Path, size: int | None) -> None:
    target = tmp_path / "blob.bin"
    with endless_blob_registry(head_length=None) as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0) as client, pytest.raises(
            ResponseTooLargeError
        ):
            client.download_blob_to_file("evil", LAYER_DIGEST, target, size=size)
        assert sent_for_blob(registry) < LAYER_SIZE + SLACK
    assert list(tmp_path.iterdir()) == []


def test_declared_size_must_match_the_descriptor(tmp_path: Path) -> None:
    def route(method: str, path: str) -> Reply | None:
        if path == f"/v2/evil/blobs/{LAYER_DIGEST}":
            return Reply(200, {"Content-Length": str(50 * MiB)}, endless())
        return None

    with HostileRegistry(route, cap=CAP) as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0) as client, pytest.raises(
            ResponseTooLargeError, match="descriptor says 1000"
        ):
            client.download_blob_to_file("evil", LAYER_DIGEST, tmp_path / "blob.bin", size=LAYER_SIZE)
        assert sent_for_blob(registry) < SLACK
    assert list(tmp_path.iterdir()) == []


def test_pull_of_an_endless_layer_fails_and_leaves_nothing(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "area" / "out"
    with endless_blob_registry(head_length=None) as registry:
        result = cli("pull", "-r", registry.host, "evil:v1", "--dir", str(out)).failed()
        assert sent_for_blob(registry) < LAYER_SIZE + SLACK
    assert "1000 bytes" in result.stderr
    assert [p.name for p in out.rglob("*")] == []


def test_copy_of_an_endless_layer_fails_and_leaves_nothing(
    cli: Cli, tmp_path: Path, dockyard_server: DockyardServer  # noqa: F811
) -> None:
    layout = tmp_path / "area" / "layout"
    with endless_blob_registry(head_length=None, title=None) as registry:
        cli("copy", f"{registry.host}/evil:v1", f"oci:{layout}").failed()
        to_layout = sent_for_blob(registry)
        cli("copy", f"{registry.host}/evil:v1", f"{dockyard_server.host}/copied:v1").failed()
        to_registry = sent_for_blob(registry) - to_layout
    assert to_layout < LAYER_SIZE + SLACK and to_registry < LAYER_SIZE + SLACK
    blob_dir = layout / "blobs" / "sha256"
    assert not blob_dir.exists() or not any(LAYER_DIGEST.split(":")[1] in p.name for p in blob_dir.iterdir())


# -- paging --------------------------------------------------------------------------------------------------


def looping_registry(distinct: bool, give_up_after: int = 300) -> HostileRegistry:
    """Tag and catalog pages whose ``Link`` comes back to the same page (or, ``distinct``, goes on forever with
    a new ``last`` each time); after ``give_up_after`` pages the server ends the listing, so a client without
    a guard finishes (with duplicates) instead of hanging the test run."""
    counter = {"n": 0}

    def route(method: str, path: str) -> Reply | None:
        match = re.match(r"^/v2/(?:(evil)/tags/list|_catalog)", path)
        if match is None:
            return None
        counter["n"] += 1
        key = "tags" if match.group(1) else "repositories"
        base = "/v2/evil/tags/list" if match.group(1) else "/v2/_catalog"
        headers = {"Content-Type": "application/json"}
        if counter["n"] < give_up_after:
            last = f"p{counter['n']}" if distinct else "p0"
            headers["Link"] = f'<{base}?n=1&last={last}>; rel="next"'
        return Reply(200, headers, json.dumps({"name": "evil", key: [f"t{counter['n']}"]}).encode())

    return HostileRegistry(route)


def test_a_link_that_loops_ends_the_tag_listing() -> None:
    with looping_registry(distinct=False) as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0) as client:
            with pytest.raises(PagingError, match="already followed"):
                list(client.list_tag_properties("evil"))
            with pytest.raises(PagingError, match="already followed"):
                list(client.list_repository_names())
        assert len(registry.requests) < 20


def test_pages_past_max_pages_end_the_listing() -> None:
    with looping_registry(distinct=True) as registry:
        with ContainerRegistryClient(registry.url, None, retry_total=0, max_pages=25) as client:
            with pytest.raises(PagingError, match="more than 25 pages"):
                list(client.list_repository_names())
            with pytest.raises(PagingError, match="more than 25 pages"):
                for _ in client.list_repository_names().by_page():
                    pass
        assert len(registry.requests) < 60


def test_paging_loops_in_the_cli(cli: Cli) -> None:  # noqa: F811
    with looping_registry(distinct=False) as registry:
        assert "already followed" in cli("tag", "list", "-r", registry.host, "evil").failed().stderr
        assert "already followed" in cli("repo", "list", "-r", registry.host).failed().stderr


# -- nesting -------------------------------------------------------------------------------------------------


def test_a_1200_deep_chain_of_indexes_is_refused(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    """Each index lists the next; copy stops at the nesting limit (16) with one line, not a RecursionError."""
    by_digest: dict[str, bytes] = {}
    child = manifest_with_layer()
    child_type = mt.OCI_MANIFEST
    for _ in range(1200):
        digest = compute_digest(child)
        by_digest[digest] = child
        entry = {"mediaType": child_type, "digest": digest, "size": len(child)}
        child = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]}).encode()
        child_type = mt.OCI_INDEX
    top = child

    def route(method: str, path: str) -> Reply | None:
        ref = path.rsplit("/", 1)[-1]
        if path.startswith("/v2/evil/manifests/"):
            body = top if ref == "top" else by_digest.get(ref)
            if body is None:
                return None
            media = json.loads(body)["mediaType"]
            return Reply(200, {"Content-Type": media, "Docker-Content-Digest": compute_digest(body)}, body)
        return None

    with HostileRegistry(route) as registry:
        result = cli("copy", f"{registry.host}/evil:top", f"oci:{tmp_path / 'area' / 'layout'}").failed()
        fetched = sum(1 for method, path in registry.requests if "/manifests/sha256:" in path and method == "GET")
    assert "nested more than 16 levels" in result.stderr
    assert fetched <= 17
