"""A registry nobody listens on: the error names the URL and comes at once (no retries against a closed port),
while dropped connections are still retried."""

from __future__ import annotations

import pytest

from dockyard import ContainerRegistryClient, ServiceRequestError
from dockyard.protocol.instructions import Request, Sleep
from dockyard.protocol.session import Session
from tests.support.servers import free_port


def test_refused_connection_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ContainerRegistryClient(url) as client, pytest.raises(ServiceRequestError) as caught:
        list(client.list_repository_names())
    assert caught.value.url == url
    assert caught.value.connect_failed
    assert url in str(caught.value)


def test_refused_connection_is_not_retried() -> None:
    session = Session("http://127.0.0.1:9")
    request = Request("GET", session.url("/v2/"))
    steps = session.send(request, auth=False)
    assert next(steps) is request
    refused = ServiceRequestError("refused", url="http://127.0.0.1:9", connect_failed=True)
    with pytest.raises(ServiceRequestError) as caught:
        steps.throw(refused)
    assert caught.value is refused


def test_dropped_connection_is_retried() -> None:
    session = Session("http://127.0.0.1:9")
    request = Request("GET", session.url("/v2/"))
    steps = session.send(request, auth=False)
    assert next(steps) is request
    assert isinstance(steps.throw(ServiceRequestError("dropped", url="http://127.0.0.1:9")), Sleep)
    assert next(steps) is request
