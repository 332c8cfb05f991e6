"""Shared fixtures: real registry processes on loopback, started and stopped by the tests."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.inprocess import InProcessServer
from tests.support.objectstores import Emulator, start_emulator
from tests.support.peers import require_program
from tests.support.postgres import PostgresCluster
from tests.support.servers import DistributionServer, DockyardServer, write_htpasswd

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

#: The user every auth-enabled test server knows.
TEST_USER = ("tester", "s3cret-pass")
_counter = itertools.count()


def unique(prefix: str = "repo") -> str:
    """A repository name no other test in this run uses."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def repo_name() -> str:
    return unique("test")


@pytest.fixture(scope="session")
def htpasswd_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_htpasswd(tmp_path_factory.mktemp("auth") / "htpasswd", {TEST_USER[0]: TEST_USER[1]})


@pytest.fixture(scope="session")
def dockyard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """One ``dockyard serve`` (no auth) shared by the session; tests use unique repository names."""
    with DockyardServer(tmp_path_factory.mktemp("dockyard")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def dockyard_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """The registry application (no auth) in this process, shared by the session: for tests of what endpoints
    answer; reach it with ``dockyard_app.client()``. Tests use unique repository names."""
    with InProcessServer(tmp_path_factory.mktemp("dockyard-app")) as server:
        yield server


@pytest.fixture(scope="session")
def dockyard_auth_server(tmp_path_factory: pytest.TempPathFactory, htpasswd_file: Path) -> Iterator[DockyardServer]:
    """``dockyard serve --htpasswd … --accept-any-aad-token``: the token flow, as ACR does it."""
    # Many tests log in wrongly on purpose, all from 127.0.0.1: the failed-login limit must not turn them into 429s.
    with DockyardServer(
        tmp_path_factory.mktemp("dockyard-auth"), "--htpasswd", str(htpasswd_file), "--accept-any-aad-token",
        "--login-failure-limit", "1000",
    ) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fresh_dockyard(tmp_path: Path) -> Iterator[DockyardServer]:
    """A ``dockyard serve`` of this test's own (not started: call ``.start()``); stopped at the end."""
    server = DockyardServer(tmp_path / "server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def distribution_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributionServer]:
    """Debian's docker-registry (CNCF distribution 2.8), no auth."""
    program = require_program("docker-registry", "docker-registry")
    with DistributionServer(tmp_path_factory.mktemp("distribution"), program=program) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def distribution_auth_server(
    tmp_path_factory: pytest.TempPathFactory, htpasswd_file: Path
) -> Iterator[DistributionServer]:
    """docker-registry behind htpasswd (Basic auth, no token server)."""
    program = require_program("docker-registry", "docker-registry")
    with DistributionServer(
        tmp_path_factory.mktemp("distribution-auth"), htpasswd=htpasswd_file, program=program
    ) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def object_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Emulator]]:
    """Object storage emulators by scheme (``s3``: moto_server, ``az``: Azurite), each started on first use and
    stopped at the end of the session."""
    started: dict[str, Emulator] = {}

    def get(kind: str) -> Emulator:
        if kind not in started:
            started[kind] = start_emulator(kind, tmp_path_factory.mktemp(f"emulator-{kind}"))
        return started[kind]

    try:
        yield get
    finally:
        for emulator in started.values():
            emulator.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL 15 cluster for the session (127.0.0.1, its own port); stopped and removed at the end."""
    # Not under pytest's temporary directory: that is private to root, and the cluster runs as another user.
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="dockyard-pg-")))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A new database of the session's cluster, upgraded to the current schema (``dockyard db upgrade``)."""
    from dockyard.server.storage.schema import upgrade

    url = postgres_cluster.database()
    upgrade(url)
    return url
