"""The SDK behind a proxy and with its own CA bundle, as azure-core is: ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``,
``proxies=``, ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, ``connection_verify``, and ``logging_enable``.

The proxy environment is read once, when the client is built, into the patterns of httpx's mounts; the raw range
reader's "does this URL go through a proxy?" is answered from the same patterns, so a blob goes where the rest of
the client's requests to that host go, whatever form ``NO_PROXY`` takes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard import ContainerRegistryClient, ServiceRequestError
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from dockyard.credentials import BasicCredential
from dockyard.transport.config import environment_proxy_patterns
from dockyard.transport.exempt import AsyncExemptingTransport, ExemptingTransport
from tests.conftest import TEST_USER, unique
from tests.support.forward_proxy import ForwardProxy
from tests.support.images import upload_blob
from tests.support.servers import DockyardServer
from tests.support.tls import TLSRelay

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> ForwardProxy:
    _clear_proxy_environment(monkeypatch)
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


# -- one reading of the proxy environment ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied_blob(dockyard_server: DockyardServer) -> tuple[str, str, bytes]:
    """A small blob on the shared server: its repository, digest and bytes."""
    repository, data = unique("proxyenv"), os.urandom(256 * 1024)
    return repository, upload_blob_to(dockyard_server, repository, data), data


#: (environment, host of the registry URL, whether requests to it go through the proxy). ``{proxy}`` is the
#: loopback proxy's URL, ``{port}`` the registry's port, ``{other_port}`` another port. The answers are httpx's
#: reading of curl's ``NO_PROXY`` forms: ``.domain`` exempts subdomains only, ``host`` the host and its
#: subdomains, ``host:port`` that port only, ``*`` every host; and an address range (``/bits``, which httpx does
#: not understand) every address in it, as curl and requests (azure-core's transport) exempt them.
def _no_proxy(entry: str, host: str, proxied: bool, name: str) -> Any:
    """A case of ``HTTP_PROXY`` set and ``NO_PROXY=entry``: a request to ``host`` goes through it or not."""
    return pytest.param({"HTTP_PROXY": "{proxy}", "NO_PROXY": entry}, host, proxied, id=f"no-proxy-{name}")


ENVIRONMENT_CASES = [
    pytest.param({"HTTP_PROXY": "{proxy}"}, "127.0.0.1", True, id="http-proxy"),
    pytest.param({"http_proxy": "{proxy}", "HTTP_PROXY": "http://127.0.0.1:9"}, "127.0.0.1", True,
                 id="lower-case-wins"),
    pytest.param({"HTTPS_PROXY": "{proxy}"}, "127.0.0.1", False, id="https-proxy-only"),
    pytest.param({"ALL_PROXY": "{proxy}"}, "127.0.0.1", True, id="all-proxy"),
    pytest.param({"ALL_PROXY": "{proxy}", "no_proxy": "127.0.0.1"}, "127.0.0.1", False, id="all-proxy-no-proxy-ip"),
    _no_proxy("127.0.0.1", "127.0.0.1", False, "ip"),
    _no_proxy("*", "127.0.0.1", False, "star"),
    _no_proxy("127.0.0.1:{port}", "127.0.0.1", False, "ip-port"),
    _no_proxy("127.0.0.1:{other_port}", "127.0.0.1", True, "other-port"),
    _no_proxy("example.com, localhost", "localhost", False, "host-in-list"),
    _no_proxy("localhost:{port}", "localhost", False, "host-port"),
    _no_proxy("localhost", "127.0.0.1", True, "other-host"),
    _no_proxy(".localhost", "localhost", True, "dot-domain-is-subdomains-only"),
    _no_proxy("http://127.0.0.1", "127.0.0.1", False, "url-pattern"),
    _no_proxy("127.0.0.0/8", "127.0.0.1", False, "address-range"),
    _no_proxy("example.com,127.0.0.1/32", "127.0.0.1", False, "address-range-of-one"),
    _no_proxy("10.0.0.0/8,::1/128", "127.0.0.1", True, "other-address-ranges"),
    _no_proxy("127.0.0.0/8", "localhost", True, "a-name-is-not-resolved"),
]


def _set_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], proxy: ForwardProxy, port: int) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(proxy=proxy.url, port=port, other_port=port + 1))


def _httpx_routes_through_a_proxy(http: httpx.Client | httpx.AsyncClient, url: str) -> bool:
    """Whether the client's httpx client sends a request to ``url`` through one of its proxies (a proxy's mount
    sends an address in a ``NO_PROXY`` range out on the direct transport)."""
    target = httpx.URL(url)
    chosen = http._transport_for_url(target)
    if isinstance(chosen, ExemptingTransport | AsyncExemptingTransport):
        chosen = chosen.pick(target.host)
    return chosen is not http._transport


def _assert_routing(
    client: Any, proxy: ForwardProxy, url: str, digest: str, *, proxied: bool
) -> None:
    """The client's two answers to "does ``url`` go through a proxy?" and what the proxy saw all say ``proxied``."""
    assert bool([s for s in proxy.requests() if "/_catalog" in s.url]) is proxied
    assert bool([s for s in proxy.requests("GET") if digest in s.url]) is proxied
    assert client._config.uses_proxy(f"{url}/v2/") is proxied
    assert _httpx_routes_through_a_proxy(client._driver.http, f"{url}/v2/") is proxied


def _list_download_and_check_route(
    client: ContainerRegistryClient, proxy: ForwardProxy, url: str, blob: tuple[str, str, bytes], *, proxied: bool
) -> None:
    """A listing and a streamed blob download with ``client``, then :func:`_assert_routing`."""
    repository, digest, data = blob
    _names(client)
    assert b"".join(client.download_blob(repository, digest)) == data
    _assert_routing(client, proxy, url, digest, proxied=proxied)


@pytest.mark.parametrize(("env", "host", "proxied"), ENVIRONMENT_CASES)
def test_blob_reader_and_httpx_route_alike(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer,
    proxied_blob: tuple[str, str, bytes], env: dict[str, str], host: str, proxied: bool,
) -> None:
    _set_environment(monkeypatch, env, proxy, dockyard_server.port)
    url = f"http://{host}:{dockyard_server.port}"
    with ContainerRegistryClient(url) as client:
        _list_download_and_check_route(client, proxy, url, proxied_blob, proxied=proxied)


@pytest.mark.parametrize(("env", "host", "proxied"), ENVIRONMENT_CASES)
async def test_async_blob_reader_and_httpx_route_alike(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer,
    proxied_blob: tuple[str, str, bytes], env: dict[str, str], host: str, proxied: bool,
) -> None:
    repository, digest, data = proxied_blob
    _set_environment(monkeypatch, env, proxy, dockyard_server.port)
    url = f"http://{host}:{dockyard_server.port}"
    async with AsyncContainerRegistryClient(url) as client:
        [name async for name in client.list_repository_names()]
        stream = await client.download_blob(repository, digest)
        assert b"".join([piece async for piece in stream]) == data
        _assert_routing(client, proxy, url, digest, proxied=proxied)


def test_environment_changed_after_construction_changes_no_routing(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer,
    proxied_blob: tuple[str, str, bytes],
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with ContainerRegistryClient(dockyard_server.url) as client:
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.setenv("NO_PROXY", "*")
        _list_download_and_check_route(client, proxy, dockyard_server.url, proxied_blob, proxied=True)
    proxy.seen.clear()
    with ContainerRegistryClient(dockyard_server.url) as client:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY")
        _list_download_and_check_route(client, proxy, dockyard_server.url, proxied_blob, proxied=False)


def test_trust_env_false_ignores_the_proxy_environment(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer,
    proxied_blob: tuple[str, str, bytes],
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with ContainerRegistryClient(dockyard_server.url, trust_env=False) as client:
        _list_download_and_check_route(client, proxy, dockyard_server.url, proxied_blob, proxied=False)


def test_given_proxies_route_the_blob_reader_too(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer,
    proxied_blob: tuple[str, str, bytes],
) -> None:
    """``proxies=`` wins over the environment, for the blob reader as for httpx; its ``no_proxy`` takes the
    forms ``NO_PROXY`` takes."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    url = f"http://localhost:{dockyard_server.port}"
    for proxies, proxied in (({"http": proxy.url}, True), ({"http": proxy.url, "no_proxy": "localhost"}, False),
                             ({"all": proxy.url, "no_proxy": ".localhost"}, True),
                             ({"http": proxy.url, "no_proxy": "example.com,*"}, False)):
        proxy.seen.clear()
        with ContainerRegistryClient(url, proxies=proxies) as client:
            _list_download_and_check_route(client, proxy, url, proxied_blob, proxied=proxied)


def test_custom_transport_ignores_the_proxy_environment(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, dockyard_server: DockyardServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with ContainerRegistryClient(dockyard_server.url, transport=httpx.HTTPTransport()) as client:
        _names(client)
        assert not client._config.uses_proxy(dockyard_server.url)
    assert proxy.requests() == []


#: Environments in every ``NO_PROXY`` form, and URLs to route under each, for the comparisons with httpx's own.
READING_CASES = [
    {"HTTP_PROXY": "http://proxy.test:3128", "NO_PROXY": ".example.com, example.org,::1,192.168.0.0/16,localhost,"
     "http://direct.test,registry.test:5000,*.wild.test"},
    {"http_proxy": "proxy.test:1", "HTTP_PROXY": "http://upper.test:2", "ALL_PROXY": "http://all.test:3",
     "no_proxy": "lower.test", "NO_PROXY": "upper.test"},
    {"HTTPS_PROXY": "http://proxy.test:3128", "ALL_PROXY": "http://all.test:3128", "NO_PROXY": "10.0.0.1"},
    {"HTTP_PROXY": "http://proxy.test:3128", "NO_PROXY": "direct.test,*"},
    {"FTP_PROXY": "http://proxy.test:21"},
]
URLS = ["http://example.com/v2/", "http://www.example.com/v2/", "https://example.org/v2/", "http://badexample.org/",
        "http://EXAMPLE.ORG/", "http://[::1]:5000/v2/", "http://192.168.1.1/", "http://192.168.0.0/",
        "http://localhost:5000/v2/", "http://direct.test/", "https://direct.test/", "http://registry.test:5000/",
        "http://registry.test/", "https://registry.test:5000/", "http://a.wild.test/", "http://wild.test/",
        "http://lower.test/", "http://upper.test/", "https://10.0.0.1/", "https://10.0.0.2:443/", "ftp://x.test/"]


def _use_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The proxy variables are ``env``'s, and only those."""
    _clear_proxy_environment(monkeypatch)
    monkeypatch.delenv("FTP_PROXY", raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)  # the standard library's CGI guard
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("env", READING_CASES)
def test_environment_is_read_as_httpx_reads_it(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The patterns (and their order) are those ``httpx.Client(trust_env=True)`` mounts from the same variables, but
    for address ranges (``192.168.0.0/16``, which httpx mounts as its first address): they exempt by range."""
    from httpx._utils import get_environment_proxies

    _use_environment(monkeypatch, env)
    httpx_patterns = [(pattern, proxy) for pattern, proxy in get_environment_proxies().items() if "/" not in
                      pattern.partition("://")[2]]
    assert list(environment_proxy_patterns().items()) == httpx_patterns


@pytest.mark.parametrize("env", READING_CASES)
def test_proxy_decision_is_the_mount_httpx_picks(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """For every URL, the client's proxy is the one of the mount httpx's own reading of the environment picks,
    and the client's httpx client picks the same."""
    from httpx._utils import get_environment_proxies

    _use_environment(monkeypatch, env)
    proxies = get_environment_proxies()
    with httpx.Client(trust_env=True) as reference, ContainerRegistryClient("http://127.0.0.1:9") as client:
        patterns = {transport: pattern.pattern for pattern, transport in reference._mounts.items() if transport}
        for url in URLS:
            chosen = reference._transport_for_url(httpx.URL(url))
            expected = proxies[patterns[chosen]] if chosen in patterns else None
            if _requests_exempts_the_address(url):
                expected = None  # an address in a NO_PROXY range, which httpx does not understand
            assert client._config.uses_proxy(url) is (expected is not None), url
            assert _httpx_routes_through_a_proxy(client._driver.http, url) is (expected is not None), url
            assert client._config.proxy_for(url) == expected, url


def _requests_exempts_the_address(url: str) -> bool:
    """requests' answer (azure-core's transport) for an IPv4 address in one of ``NO_PROXY``'s address ranges."""
    from requests.utils import address_in_network, is_ipv4_address, is_valid_cidr

    host = httpx.URL(url).host
    entries = (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "").split(",")
    ranges = [entry.strip() for entry in entries if is_valid_cidr(entry.strip())]
    return is_ipv4_address(host) and any(address_in_network(host, network) for network in ranges)


RANGE_URLS = ["http://10.1.2.3:5000/v2/", "https://10.255.0.1/", "http://11.0.0.1/", "http://192.168.7.7/",
              "http://192.169.0.1/", "http://172.16.0.1/", "https://registry.test/", "http://10.0.0.1.nip.test/"]


@pytest.mark.parametrize("no_proxy", ["10.0.0.0/8", "192.168.0.0/16, 10.0.0.0/8", "172.16.0.0/12,registry.test",
                                      "10.0.0.0/33,10.1.2.3"])
def test_address_ranges_are_exempt_as_requests_exempts_them(monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    """An address inside a ``NO_PROXY`` range goes direct, for the blob reader as for httpx, as requests (and so
    azure-containerregistry) sends it; host names are not resolved; a malformed range is ignored."""
    _use_environment(monkeypatch, {"HTTP_PROXY": "http://proxy.test:3128", "HTTPS_PROXY": "http://proxy.test:3128",
                                   "NO_PROXY": no_proxy})
    from requests.utils import get_environ_proxies

    for make in (ContainerRegistryClient, AsyncContainerRegistryClient):
        client: Any = make("http://127.0.0.1:9")
        for url in RANGE_URLS:
            proxied = bool(get_environ_proxies(url))
            assert client._config.uses_proxy(url) is proxied, (make, url)
            assert _httpx_routes_through_a_proxy(client._driver.http, url) is proxied, (make, url)


def test_an_ipv6_address_range_is_exempt_as_in_curl(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_environment(monkeypatch, {"ALL_PROXY": "http://proxy.test:3128", "NO_PROXY": "fd00::/8,fe00::/200"})
    with ContainerRegistryClient("http://127.0.0.1:9") as client:
        assert not client._config.uses_proxy("http://[fd12:3456::1]:5000/v2/")
        assert client._config.uses_proxy("http://[fe80::1]:5000/v2/")
        assert client._config.uses_proxy("http://127.0.0.1:5000/v2/")


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
