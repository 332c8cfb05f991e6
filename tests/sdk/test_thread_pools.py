"""One sync client shared by many threads (as ``dockyard sync`` shares it): each thread sends through a connection
pool of its own, so no thread's pool pass closes a connection another thread is waiting on; pools of threads
that ended are reused; ``close()`` closes every pool.

httpcore's shared pool closed connections under other threads' requests (the answer already sitting in the
socket read as "closed by the server"): the request then failed with "Bad file descriptor", or hung until a
timeout. Against a ``--workers 2`` server, 32 threads of one client hit that in about every other round."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dockyard import ContainerRegistryClient
from dockyard.transport.perthread import PerThreadTransport
from tests.support.images import Content, make_image, push
from tests.support.servers import DockyardServer
from tests.support.sockets import established

THREADS = 32
REQUESTS_PER_THREAD = 40
ROUNDS = 6


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DockyardServer, Content]]:
    """A ``dockyard serve --workers 2`` holding one image (two small layers)."""
    with DockyardServer(tmp_path_factory.mktemp("workers2"), "--workers", "2") as server:
        image = make_image(layers=2, layer_size=1024)
        push(image, server.url, "shared/repo", "v1")
        yield server, image  # type: ignore[misc]


def test_threads_sharing_one_client_all_get_their_answers(two_workers: tuple[DockyardServer, Content]) -> None:
    server, image = two_workers
    digests = [blob.digest for blob in image.all_blobs()]
    failures: list[str] = []

    def requests(client: ContainerRegistryClient) -> None:
        for i in range(REQUESTS_PER_THREAD):
            try:
                if i % 2:
                    assert client.blob_exists("shared/repo", digests[i % len(digests)])
                else:
                    assert client.get_manifest_descriptor("shared/repo", "v1").digest == image.digest
            except Exception as exc:  # every failure is collected and reported
                failures.append(f"{type(exc).__name__}: {exc}")

    for _ in range(ROUNDS):  # a fresh client (fresh pools) each round
        # No retries, and a bounded wait: a connection closed under a request shows as that request's error.
        client = ContainerRegistryClient(server.url, None, timeout=10, retry_total=0)
        with client, ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(requests, [client] * THREADS))
    assert failures == []


def _transport(max_connections: int = 4) -> PerThreadTransport:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return PerThreadTransport(lambda: httpx.HTTPTransport(limits=limits))


def test_each_sending_thread_gets_a_pool_and_close_closes_them_all(
    two_workers: tuple[DockyardServer, Content],
) -> None:
    server, _ = two_workers
    transport = _transport()
    at_once = threading.Barrier(4)

    def get(http: httpx.Client) -> None:
        at_once.wait(timeout=10)  # all four threads hold their pool's connection at the same time
        assert http.get(f"{server.url}/v2/").status_code == 200

    with httpx.Client(transport=transport, timeout=10) as http:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: get(http), range(4)))
        assert transport.pools == 4
        assert established(os.getpid(), remote_port=server.port) >= 4  # kept alive in their pools
    assert established(os.getpid(), remote_port=server.port) == 0  # Client.close() closed every pool


def test_a_thread_that_ended_leaves_its_pool_to_the_next(two_workers: tuple[DockyardServer, Content]) -> None:
    server, _ = two_workers
    transport = _transport()
    with httpx.Client(transport=transport, timeout=10) as http:
        for _ in range(5):  # one short-lived thread after another, as a parallel download's part threads
            thread = threading.Thread(target=lambda: http.get(f"{server.url}/v2/").raise_for_status())
            thread.start()
            thread.join()
        assert transport.pools == 1
        assert established(os.getpid(), remote_port=server.port) == 1  # and its kept-alive connection
    assert established(os.getpid(), remote_port=server.port) == 0


def test_the_client_closes_every_threads_connections(two_workers: tuple[DockyardServer, Content]) -> None:
    server, _ = two_workers
    with ContainerRegistryClient(server.url, None) as client:
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(lambda _: client.get_manifest_descriptor("shared/repo", "v1"), range(32)))
        assert established(os.getpid(), remote_port=server.port) >= 1
    assert established(os.getpid(), remote_port=server.port) == 0


def test_a_custom_transport_is_used_as_given(two_workers: tuple[DockyardServer, Content]) -> None:
    server, _ = two_workers
    sent: list[str] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.method)
            return super().handle_request(request)

    client = ContainerRegistryClient(server.url, None, transport=Counting())
    with client, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: client.get_manifest_descriptor("shared/repo", "v1"), range(8)))
    assert len(sent) >= 8
