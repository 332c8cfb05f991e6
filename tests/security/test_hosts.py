"""One rule for hosts: what is loopback, and how a registry written without a scheme is reached.

The SDK and the CLI both go through :mod:`dockyard.oci.hosts`: a name that merely starts with ``127.`` is a
remote host (credentials never go to it over plain HTTP), and ``host:port`` means ``http`` for loopback hosts
and ``https`` for every other, in both.
"""

from __future__ import annotations

import re

import pytest

from dockyard import ContainerRegistryClient
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from dockyard.cli.connect import endpoint_url
from dockyard.credentials import BasicCredential
from dockyard.errors import ServiceRequestError
from dockyard.oci import hosts
from dockyard.protocol.instructions import Request
from dockyard.protocol.session import Session
from tests.support.servers import DockyardServer


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True), ("LOCALHOST:5000", True), ("127.0.0.1", True), ("127.0.0.2:80", True),
        ("127.255.255.254", True), ("::1", True), ("[::1]:5000", True), ("[0:0:0:0:0:0:0:1]", True),
        ("127.attacker.example", False), ("127.0.0.1.attacker.example:5000", False), ("127.0.0.1.nip.io", False),
        ("localhost.attacker.example", False), ("128.0.0.1", False), ("10.0.0.5:5000", False),
        ("[::2]:5000", False), ("example.com", False), ("", False),
    ],
)
def test_loopback_is_decided_by_address_not_prefix(host: str, loopback: bool) -> None:
    assert hosts.is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost", "http://localhost"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("::1", "http://[::1]"),
        ("127.attacker.example:5000", "https://127.attacker.example:5000"),
        ("Registry.Example:443/", "https://registry.example:443"),
        ("http://10.0.0.5:5000/", "http://10.0.0.5:5000"),
        ("HTTPS://127.0.0.1:5000", "https://127.0.0.1:5000"),
        ("https://[2001:DB8::1]:443", "https://[2001:db8::1]:443"),
    ],
)
def test_sdk_and_cli_reach_a_registry_the_same_way(given: str, url: str) -> None:
    assert hosts.endpoint_url(given) == url
    assert endpoint_url(given) == url
    assert ContainerRegistryClient(given, None).endpoint == url
    assert AsyncContainerRegistryClient(given, None).endpoint == url


@pytest.mark.parametrize(
    "given",
    ["", "ftp://host", "http://", "https://host/v2", "host/path", "a b", "user@host", "host:0", "host:70000",
     "host:port", "[::1", "1:2:3", "http://user:pw@host", "host..example"],
)
def test_malformed_registries_are_refused(given: str) -> None:
    with pytest.raises(hosts.InvalidEndpointError):
        hosts.parse_endpoint(given)


def test_origins_compare_default_ports_equal() -> None:
    assert hosts.origin("https://Reg.Example:443/v2/x") == hosts.origin("https://reg.example/v2/") == (
        "https://reg.example"
    )
    assert hosts.origin("http://[::1]:80/v2/") == "http://[::1]"
    assert hosts.origin("http://127.0.0.1:5000/x") != hosts.origin("http://127.0.0.1:5001/x")


def test_credentials_never_go_over_plain_http_to_a_127_named_host() -> None:
    """``http://127.attacker.example`` is a remote host: its Basic challenge does not get the password."""
    session = Session("http://127.attacker.example", BasicCredential("u", "p"))
    request = Request("GET", "http://127.attacker.example/v2/_catalog")
    gen = session.send(request)
    sent = next(gen)
    assert "Authorization" not in sent.headers
    from dockyard.protocol.messages import Response

    with pytest.raises(ServiceRequestError, match=re.escape("plain HTTP to http://127.attacker.example")):
        gen.send(Response(401, {"WWW-Authenticate": 'Basic realm="x"'}))


def test_sdk_reaches_a_loopback_registry_given_without_scheme(dockyard_server: DockyardServer) -> None:
    """``ContainerRegistryClient("127.0.0.1:PORT")`` talks plain HTTP to the local ``dockyard serve``."""
    with ContainerRegistryClient(dockyard_server.host, None, retry_total=0) as client:
        assert client.endpoint == dockyard_server.url
        assert isinstance(list(client.list_repository_names()), list)
