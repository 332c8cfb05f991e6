"""Operations pick a metadata twin once (``/acr/v1`` or plain ``/v2``); a plain registry's client-side pages
read the tag list once per listing, not once per page."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dockyard import ContainerRegistryClient
from dockyard.errors import ResourceNotFoundError
from dockyard.protocol.acr_metadata import AcrMetadata
from dockyard.protocol.oci_metadata import OciMetadata
from tests.sdk.test_client_smoke import _image


def test_plain_registry_pages_read_the_tag_list_once(
    distribution_server: Any, repo_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with ContainerRegistryClient(distribution_server.url, logging_enable=True) as client:
        for index, tag in enumerate(("a", "b", "c")):
            _image(client, repo_name, tag, f"layer {index}".encode())
        caplog.set_level(logging.DEBUG, logger="azure.core.pipeline.policies.http_logging_policy")
        caplog.clear()
        pages = client.list_tag_properties(repo_name, order_by="timedesc", results_per_page=1).by_page()
        names = sorted(tag.name for page in pages for tag in page)
        listed = [r for r in caplog.records if "/tags/list" in r.getMessage() and "Request URL" in r.getMessage()]
        assert names == ["a", "b", "c"]
        assert len(listed) == 1
        assert isinstance(client._driver.run(client._ops.metadata()), OciMetadata)


def test_acr_registry_gets_the_acr_twin(dockyard_server: Any) -> None:
    with ContainerRegistryClient(dockyard_server.url) as client:
        assert isinstance(client._driver.run(client._ops.metadata()), AcrMetadata)


def test_plain_registry_first_listing_falls_back_to_v2(distribution_server: Any, repo_name: str) -> None:
    """A fresh client's first listing asks ``/acr/v1``; refused there, the probe finds no ACR API and the
    listing goes on over ``/v2`` (names, tags and paging as before)."""
    with ContainerRegistryClient(distribution_server.url) as seeding:
        for index, tag in enumerate(("a", "b")):
            _image(seeding, repo_name, tag, f"fallback {index}".encode())
    with ContainerRegistryClient(distribution_server.url) as client:
        pages = client.list_tag_properties(repo_name, results_per_page=1).by_page()
        listed = [[tag.name for tag in page] for page in pages]
        assert [len(page) for page in listed] == [1, 1]
        assert sorted(name for page in listed for name in page) == ["a", "b"]
        assert client.has_acr_api() is False
    with ContainerRegistryClient(distribution_server.url) as client:
        assert repo_name in list(client.list_repository_names())
        assert isinstance(client._driver.run(client._ops.metadata()), OciMetadata)


def test_acr_registry_refusing_the_first_page_is_the_callers_error(dockyard_server: Any) -> None:
    """On a registry with ``/acr/v1``, a refused first page (an unknown repository) is raised as such, not
    retried over ``/v2``; the probe that settled it is remembered."""
    with ContainerRegistryClient(dockyard_server.url) as client:
        with pytest.raises(ResourceNotFoundError):
            list(client.list_tag_properties("no/such-repository"))
        assert client._ops.session.acr_api is True
        assert isinstance(client._driver.run(client._ops.metadata()), AcrMetadata)


def test_concurrent_untags_on_a_plain_registry_all_succeed(distribution_server: Any, repo_name: str) -> None:
    """Where the tag DELETE is refused (CNCF distribution), each untag pushes a placeholder manifest that needs
    the empty blob; untags of one repository at once upload that blob over each other, and distribution checks a
    manifest against a blob link it is rewriting in place. Each untag gets through, and every tag is gone."""
    tags = [f"t{index}" for index in range(24)]
    with ContainerRegistryClient(distribution_server.url) as client:
        for index, tag in enumerate(tags):
            _image(client, repo_name, tag, f"layer {index}".encode())
        for _ in range(4):  # the race is narrow: several waves of untags at once
            with ThreadPoolExecutor(len(tags)) as pool:
                list(pool.map(lambda tag: client.delete_tag(repo_name, tag), tags))
            assert list(client.list_tag_properties(repo_name)) == []
            for index, tag in enumerate(tags):
                _image(client, repo_name, tag, f"layer {index}".encode())
