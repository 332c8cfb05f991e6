"""``http2=True`` needs the ``h2`` package, which comes with the ``http2`` extra: without it, the client's
constructor says how to get it."""

from __future__ import annotations

import sys

import pytest

from dockyard import ContainerRegistryClient
from dockyard.aio import ContainerRegistryClient as AsyncContainerRegistryClient


@pytest.fixture
def without_h2(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import h2`` fails, as it does where the ``http2`` extra is not installed."""
    monkeypatch.setitem(sys.modules, "h2", None)


@pytest.mark.usefixtures("without_h2")
@pytest.mark.parametrize("client_class", [ContainerRegistryClient, AsyncContainerRegistryClient])
def test_http2_without_h2_names_the_extra(client_class: type) -> None:
    with pytest.raises(ImportError, match=r"dockyard\[http2\]"):
        client_class("http://127.0.0.1:5000", None, http2=True)


@pytest.mark.usefixtures("without_h2")
def test_http1_needs_no_h2() -> None:
    ContainerRegistryClient("http://127.0.0.1:5000", None).close()
