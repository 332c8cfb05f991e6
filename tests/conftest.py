"""Shared fixtures: real registry processes on loopback, started and stopped by the tests."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import ReplicaCluster
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


#: Storage backends of the behavioural suites. ``sqlite-files`` is the default single server (SQLite metadata, blobs
#: in its data dir); ``pg-s3-lb`` and ``pg-az-lb`` are two replicas on one PostgreSQL database and one bucket
#: (moto_server) or container (Azurite) behind haproxy. A module marked ``pytest.mark.backends`` runs each test
#: that uses ``dockyard_server``, ``dockyard_app`` or ``dockyard_auth_server`` once per backend.
SQLITE_FILES = "sqlite-files"
BACKENDS = (SQLITE_FILES, "pg-s3-lb", "pg-az-lb")
#: Flags of every auth-enabled test server. Many tests log in wrongly on purpose, all from 127.0.0.1: the
#: failed-login limit must not turn them into 429s.
AUTH_FLAGS = ("--accept-any-aad-token", "--login-failure-limit", "1000")
_SERVER_FIXTURES = ("dockyard_server", "dockyard_app", "dockyard_auth_server")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """In a module marked ``backends``: one run per backend of each test using a server fixture (all the server
    fixtures a test uses are on the same backend)."""
    if metafunc.definition.get_closest_marker("backends") is None:
        return
    used = [name for name in _SERVER_FIXTURES if name in metafunc.fixturenames]
    if used:
        metafunc.parametrize(used, [[backend] * len(used) for backend in BACKENDS], indirect=True,
                             ids=list(BACKENDS), scope="session")


@pytest.fixture(scope="session")
def files_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """One ``dockyard serve`` (no auth, SQLite + files) shared by the session."""
    with DockyardServer(tmp_path_factory.mktemp("dockyard")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def files_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """The registry application (no auth, SQLite + files) in this process, shared by the session."""
    with InProcessServer(tmp_path_factory.mktemp("dockyard-app")) as server:
        yield server


@pytest.fixture(scope="session")
def files_auth_server(tmp_path_factory: pytest.TempPathFactory, htpasswd_file: Path) -> Iterator[DockyardServer]:
    """``dockyard serve --htpasswd … --accept-any-aad-token`` on SQLite + files, shared by the session."""
    with DockyardServer(tmp_path_factory.mktemp("dockyard-auth"), "--htpasswd", str(htpasswd_file),
                        *AUTH_FLAGS) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def replica_clusters(
    postgres_cluster: PostgresCluster,
    object_storage: Callable[[str], Emulator],
    tmp_path_factory: pytest.TempPathFactory,
    htpasswd_file: Path,
) -> Iterator[Callable[[str, bool], ReplicaCluster]]:
    """Replica clusters by backend (``pg-s3-lb``, ``pg-az-lb``) and auth (on: ``--htpasswd`` and
    :data:`AUTH_FLAGS`): two ``dockyard serve`` on a fresh database of the session's PostgreSQL and a fresh
    bucket/container behind haproxy, each started on first use and stopped at the end of the session."""
    from dockyard.server.storage.schema import upgrade

    started: dict[tuple[str, bool], ReplicaCluster] = {}

    def get(backend: str, auth: bool) -> ReplicaCluster:
        if (backend, auth) not in started:
            emulator = object_storage(backend.split("-")[1])
            metadata_url = postgres_cluster.database()
            upgrade(metadata_url)
            flags = ("--htpasswd", str(htpasswd_file), *AUTH_FLAGS) if auth else ()
            cluster = ReplicaCluster(tmp_path_factory.mktemp(f"{backend}-auth" if auth else backend), *flags,
                                     metadata_url=metadata_url, storage_url=emulator.new_url(), env=emulator.env())
            started[backend, auth] = cluster.start()
        return started[backend, auth]

    try:
        yield get
    finally:
        with ThreadPoolExecutor(max(1, len(started))) as pool:
            list(pool.map(ReplicaCluster.stop, started.values()))


def _backend(request: pytest.FixtureRequest, files_fixture: str, auth: bool) -> Any:
    """The server of the backend ``request`` is parametrised with (:data:`SQLITE_FILES` when it is not)."""
    backend = getattr(request, "param", SQLITE_FILES)
    if backend == SQLITE_FILES:
        return request.getfixturevalue(files_fixture)
    return request.getfixturevalue("replica_clusters")(backend, auth)


@pytest.fixture(scope="session")
def dockyard_server(request: pytest.FixtureRequest) -> DockyardServer | ReplicaCluster:
    """One ``dockyard serve`` (no auth) shared by the session, or, in a ``backends`` module, the backend's
    replicas behind their balancer (same ``url``/``host``); tests use unique repository names."""
    return _backend(request, "files_server", auth=False)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def dockyard_app(request: pytest.FixtureRequest) -> InProcessServer | ReplicaCluster:
    """The registry application (no auth) in this process, shared by the session: for tests of what endpoints
    answer; reach it with ``dockyard_app.client()``. In a ``backends`` module, the backend's replicas behind
    their balancer (``client()`` reaches them too). Tests use unique repository names."""
    return _backend(request, "files_app", auth=False)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def dockyard_auth_server(request: pytest.FixtureRequest) -> DockyardServer | ReplicaCluster:
    """``dockyard serve --htpasswd … --accept-any-aad-token``: the token flow, as ACR does it (in a ``backends``
    module: on each backend, every replica with the same htpasswd file and token signing key)."""
    return _backend(request, "files_auth_server", auth=True)  # type: ignore[no-any-return]


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
