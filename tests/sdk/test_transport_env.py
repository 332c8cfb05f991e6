"""The SDK behind a proxy and with its own CA bundle, as azure-core is: ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``,
``proxies=``, ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, ``connection_verify``, and ``logging_enable``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from dockyard import ContainerRegistryClient, ServiceRequestError
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from dockyard.credentials import BasicCredential
from tests.conftest import TEST_USER
from tests.support.forward_proxy import ForwardProxy
from tests.support.images import upload_blob
from tests.support.servers import DockyardServer
from tests.support.tls import TLSRelay


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> ForwardProxy:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with ForwardProxy() as running:
        yield running  # type: ignore[misc]


def _names(client: ContainerRegistryClient) -> list[str]:
    return list(client.list_repository_names())


def test_environment_proxy_is_used(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with ContainerRegistryClient(dockyard_server.url) as client:
        _names(client)
    seen = proxy.requests()
    assert seen and all(s.url.startswith(f"{dockyard_server.url}/") for s in seen)


async def test_environment_proxy_is_used_by_the_async_client(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncContainerRegistryClient(dockyard_server.url) as client:
        [name async for name in client.list_repository_names()]
    assert proxy.requests()


def test_no_proxy_bypasses_the_proxy(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with ContainerRegistryClient(dockyard_server.url) as client:
        _names(client)
    assert proxy.requests() == []


def test_proxies_option(proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # given proxies win over the environment, as in requests
    with ContainerRegistryClient(dockyard_server.url, proxies={"http": proxy.url}) as client:
        _names(client)
    assert proxy.requests()
    proxy.seen.clear()
    with ContainerRegistryClient(dockyard_server.url, proxies={"http": proxy.url, "no_proxy": "127.0.0.1"}) as client:
        _names(client)
    assert proxy.requests() == []


def test_parallel_download_goes_through_the_proxy(
    proxy: ForwardProxy, dockyard_server: DockyardServer, repo_name: str, tmp_path: Path
) -> None:
    data = os.urandom(65 * 1024 * 1024)  # above the parallel-download threshold
    digest = upload_blob_to(dockyard_server, repo_name, data)
    with ContainerRegistryClient(dockyard_server.url, proxies={"http": proxy.url}, max_concurrency=2) as client:
        client.download_blob_to_file(repo_name, digest, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    gets = [s for s in proxy.requests("GET") if digest in s.url]
    assert len(gets) > 1  # the parallel parts, every one through the proxy


def upload_blob_to(server: DockyardServer, repository: str, data: bytes) -> str:
    import httpx

    with httpx.Client(timeout=60, trust_env=False) as http:
        return upload_blob(http, server.url, repository, data)


# -- CA bundles --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_relay(dockyard_server: DockyardServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[TLSRelay, str]:
    """An https:// front of the shared server with a self-signed certificate, and that certificate's path."""
    workdir = tmp_path_factory.mktemp("tls")
    with TLSRelay(dockyard_server.port, workdir) as relay:
        yield relay, str(workdir / "cert.pem")  # type: ignore[misc]


def test_ca_bundle_from_the_environment(tls_relay: tuple[TLSRelay, str], monkeypatch: pytest.MonkeyPatch) -> None:
    relay, cert = tls_relay
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with ContainerRegistryClient(relay.url) as client, pytest.raises(ServiceRequestError) as caught:
        _names(client)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    with ContainerRegistryClient(relay.url) as client:
        _names(client)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    with ContainerRegistryClient(relay.url) as client:
        _names(client)


def test_connection_verify_path_and_false(tls_relay: tuple[TLSRelay, str], monkeypatch: pytest.MonkeyPatch) -> None:
    relay, cert = tls_relay
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with ContainerRegistryClient(relay.url, connection_verify=cert) as client:
        _names(client)
    with ContainerRegistryClient(relay.url, connection_verify=False) as client:
        _names(client)


# -- logging_enable ----------------------------------------------------------------------------------------------


def test_logging_enable_logs_headers_without_secrets(
    dockyard_auth_server: DockyardServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="azure")
    credential = BasicCredential(*TEST_USER)
    with ContainerRegistryClient(dockyard_auth_server.url, credential, logging_enable=True) as client:
        _names(client)
    text = caplog.text
    assert f"Request URL: '{dockyard_auth_server.url}/" in text
    assert "Response status: 200" in text
    assert "'Authorization': 'REDACTED'" in text or "'authorization': 'REDACTED'" in text
    assert TEST_USER[1] not in text and "Bearer ey" not in text
    caplog.clear()
    with ContainerRegistryClient(dockyard_auth_server.url, credential) as client:
        _names(client)
    assert "Request URL" not in caplog.text
