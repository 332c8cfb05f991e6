"""Requests per metadata operation, counted by the server, for dockyard's SDK and Microsoft's.

``dockyard serve --access-log FILE`` writes one JSON line per request. A marker request (an unauthenticated
GET the test sends itself) is written before and after each operation; the lines between the two markers are
what the operation cost. With an Entra ID credential, after warm-up, dockyard's client pays one request per
metadata operation and asks the credential for a token once per client lifetime. azure-containerregistry 1.2,
driven the same way against the same server, pays a challenge round trip on every call.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard import ContainerRegistryClient
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from tests.conftest import TEST_USER
from tests.sdk.conftest import Api, Seeder
from tests.support.credentials import AsyncCountingCredential, CountingCredential
from tests.support.images import Content
from tests.support.peers import require_module
from tests.support.proxy import FaultProxy
from tests.support.servers import DockyardServer

REPO = "counted/app"
OPERATIONS = ["get_repository_properties", "get_tag_properties", "list_tag_properties page", "get_manifest_properties"]


class AccessLog:
    """Reads the server's access log and brackets operations between marker requests."""

    def __init__(self, path: Path, server_url: str) -> None:
        self.path = path
        self.server_url = server_url

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def mark(self) -> int:
        """Send a marker request, wait until the server logged it; return its position in the log."""
        marker = f"/v2/count-marker-{uuid.uuid4().hex}/tags/list"
        httpx.get(f"{self.server_url}{marker}", timeout=10.0)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            for position, entry in enumerate(self.entries()):
                if entry.get("path") == marker:
                    return position
            time.sleep(0.02)
        raise AssertionError(f"the access log never showed the marker request {marker}")

    def between(self, start: int, end: int) -> list[dict[str, Any]]:
        return self.entries()[start + 1 : end]


@pytest.fixture(scope="module")
def counted_server(
    tmp_path_factory: pytest.TempPathFactory, htpasswd_file: Path
) -> Iterator[tuple[DockyardServer, AccessLog]]:
    """``dockyard serve --access-log … --htpasswd … --accept-any-aad-token`` for this module."""
    workdir = tmp_path_factory.mktemp("counted")
    log_path = workdir / "access.jsonl"
    server = DockyardServer(
        workdir, "--access-log", str(log_path), "--htpasswd", str(htpasswd_file), "--accept-any-aad-token"
    )
    with server:
        yield server, AccessLog(log_path, server.url)


@pytest.fixture(scope="module")
def image(counted_server: tuple[DockyardServer, AccessLog]) -> Content:
    server, _ = counted_server
    with httpx.Client(auth=httpx.BasicAuth(*TEST_USER), timeout=60.0) as http:
        seeder = Seeder(server.url, http)
        pushed = seeder.image(REPO, "v1")
        seeder.tag(REPO, "v2", pushed)
        return pushed


def _first_page(paged: Any) -> list[Any]:
    return list(next(iter(paged.by_page())))


def _sync_operations(client: Any, digest: str, **kw: Any) -> dict[str, Callable[[], Any]]:
    return {
        "get_repository_properties": lambda: client.get_repository_properties(REPO, **kw),
        "get_tag_properties": lambda: client.get_tag_properties(REPO, "v1", **kw),
        "list_tag_properties page": lambda: _first_page(client.list_tag_properties(REPO, results_per_page=10, **kw)),
        "get_manifest_properties": lambda: client.get_manifest_properties(REPO, digest, **kw),
    }


def _count(log: AccessLog, operation: Callable[[], Any]) -> tuple[int, list[dict[str, Any]], Any]:
    start = log.mark()
    result = operation()
    end = log.mark()
    requests = log.between(start, end)
    return len(requests), requests, result


def _check_results(results: dict[str, Any], image: Content) -> None:
    assert results["get_repository_properties"].name == REPO
    assert results["get_tag_properties"].digest == image.digest
    assert sorted(t.name for t in results["list_tag_properties page"]) == ["v1", "v2"]
    assert results["get_manifest_properties"].digest == image.digest


def _measure_dockyard_sync(server: DockyardServer, log: AccessLog, image: Content) -> tuple[dict[str, int], int]:
    credential = CountingCredential()
    counts: dict[str, int] = {}
    with ContainerRegistryClient(server.url, credential) as client:
        operations = _sync_operations(client, image.digest)
        for operation in operations.values():  # warm-up: challenge, exchange, tokens
            operation()
        results = {}
        for name, operation in operations.items():
            counts[name], requests, results[name] = _count(log, operation)
            assert [r["status"] for r in requests] == [200] * len(requests), (name, requests)
        # A second round costs the same: tokens stay cached while valid.
        for name, operation in operations.items():
            assert _count(log, operation)[0] == counts[name], name
        _check_results(results, image)
    return counts, credential.count


def test_one_request_per_metadata_operation(
    counted_server: tuple[DockyardServer, AccessLog], image: Content
) -> None:
    server, log = counted_server
    counts, token_calls = _measure_dockyard_sync(server, log, image)
    assert counts == dict.fromkeys(OPERATIONS, 1)
    assert token_calls == 1


async def test_one_request_per_metadata_operation_async(
    counted_server: tuple[DockyardServer, AccessLog], image: Content
) -> None:
    server, log = counted_server
    credential = AsyncCountingCredential()
    client = AsyncContainerRegistryClient(server.url, credential)
    api = Api(client, is_async=True)
    try:
        calls = {
            "get_repository_properties": lambda: api.get_repository_properties(REPO),
            "get_tag_properties": lambda: api.get_tag_properties(REPO, "v1"),
            "list_tag_properties page": lambda: api.pages("list_tag_properties", REPO, results_per_page=10),
            "get_manifest_properties": lambda: api.get_manifest_properties(REPO, image.digest),
        }
        for call in calls.values():
            await call()
        for name, call in calls.items():
            start = log.mark()
            result = await call()
            end = log.mark()
            requests = log.between(start, end)
            assert len(requests) == 1, (name, requests)
            if name == "list_tag_properties page":
                assert sorted(t.name for page in result for t in page) == ["v1", "v2"]
    finally:
        await api.close_client()
    assert credential.count == 1


def test_official_sdk_pays_more(
    counted_server: tuple[DockyardServer, AccessLog], image: Content, capsys: pytest.CaptureFixture[str]
) -> None:
    require_module("azure.containerregistry", "azure-containerregistry")
    from azure.containerregistry import ContainerRegistryClient as OfficialClient

    server, log = counted_server
    ours, our_tokens = _measure_dockyard_sync(server, log, image)

    credential = CountingCredential()
    theirs: dict[str, int] = {}
    with OfficialClient(server.url, credential) as client:
        operations = _sync_operations(client, image.digest, enforce_https=False)
        for operation in operations.values():
            operation()
        results = {}
        for name, operation in operations.items():
            theirs[name], _, results[name] = _count(log, operation)
        _check_results(results, image)
    their_tokens = credential.count

    with capsys.disabled():
        print("\nHTTP requests per operation after warm-up (Entra ID credential, counted by the server):")
        print(f"  {'operation':<28} {'dockyard':>8} {'azure-containerregistry 1.2':>28}")
        for name in OPERATIONS:
            print(f"  {name:<28} {ours[name]:>8} {theirs[name]:>28}")
        print(f"  {'get_token calls (whole run)':<28} {our_tokens:>8} {their_tokens:>28}")
    for name in OPERATIONS:
        assert theirs[name] > ours[name], name
        assert theirs[name] >= 3, name  # 401, /oauth2/token, the retried request


# -- Basic credentials: counted at a loopback proxy, so docker-registry can be measured too -----------


@pytest.mark.parametrize("server_fixture", ["dockyard_auth_server", "distribution_auth_server"])
def test_basic_credential_one_request_per_operation(
    request: pytest.FixtureRequest, server_fixture: str, repo_name: str
) -> None:
    from dockyard.credentials import BasicCredential

    server = request.getfixturevalue(server_fixture)
    with httpx.Client(auth=httpx.BasicAuth(*TEST_USER), timeout=60.0) as http:
        pushed = Seeder(server.url, http).image(repo_name, "v1")
    layer = pushed.blobs[1].digest
    with FaultProxy(server.url) as proxy, ContainerRegistryClient(proxy.url, BasicCredential(*TEST_USER)) as client:
        operations: dict[str, Callable[[], Any]] = {
            "get_manifest": lambda: client.get_manifest(repo_name, pushed.digest),
            "get_manifest_descriptor": lambda: client.get_manifest_descriptor(repo_name, "v1"),
            "blob_exists": lambda: client.blob_exists(repo_name, layer),
        }
        if server_fixture == "dockyard_auth_server":
            operations.update(
                {
                    "get_tag_properties": lambda: client.get_tag_properties(repo_name, "v1"),
                    "get_manifest_properties": lambda: client.get_manifest_properties(repo_name, pushed.digest),
                }
            )
        for operation in operations.values():
            operation()
        for name, operation in operations.items():
            before = len(proxy.seen)
            operation()
            assert [(s.method, s.status) for s in proxy.seen[before:]] in (
                [("GET", 200)],
                [("HEAD", 200)],
            ), name


def test_first_listing_of_a_fresh_client_needs_no_probe(
    counted_server: tuple[DockyardServer, AccessLog], image: Content
) -> None:
    """A new client's first listing goes to ``/acr/v1`` straight away: the challenge, the token exchange and the
    page, as Microsoft's SDK does, without a ``/acr/v1/_catalog`` probe and the catalog-scoped token it needs."""
    server, log = counted_server
    credential = CountingCredential()
    with ContainerRegistryClient(server.url, credential) as client:
        start = log.mark()
        names = sorted(tag.name for tag in client.list_tag_properties(REPO))
        end = log.mark()
        assert client.has_acr_api() is True  # learned from the page: no request of its own
        assert log.between(end, log.mark()) == []
    assert names == ["v1", "v2"]
    assert [(r["method"], r["path"], r["status"]) for r in log.between(start, end)] == [
        ("GET", f"/acr/v1/{REPO}/_tags", 401),
        ("POST", "/oauth2/exchange", 200),
        ("POST", "/oauth2/token", 200),
        ("GET", f"/acr/v1/{REPO}/_tags", 200),
    ]
    assert credential.count == 1
