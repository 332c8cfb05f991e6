"""The shared parts a scaled-out ``dockyard serve`` stands on, started for a benchmark and stopped after: a private
PostgreSQL cluster (``tests/support/postgres.py``) and an S3 endpoint (``moto_server``,
``tests/support/objectstores.py``). Each says why it cannot start instead of skipping like a test would."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.cluster import HAPROXY
from tests.support.objectstores import MotoS3
from tests.support.postgres import PG_BIN, PostgresCluster, runuser_program

from benchmarks.measure import tree_cpu_seconds


class PeerMissing(RuntimeError):
    """A peer the benchmark row needs is not installed (the message says which and how to get it)."""


def postgres_missing() -> str | None:
    """Why a private PostgreSQL cluster cannot be started here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing; apt-get install postgresql)"
    if os.geteuid() == 0 and runuser_program() is None:
        return "runuser is not installed (needed to run PostgreSQL as an unprivileged user; apt-get install util-linux)"
    return None


def moto_missing() -> str | None:
    """Why ``moto_server`` cannot be started here, or None."""
    if shutil.which("moto_server") is None and not (Path(sys.executable).parent / "moto_server").exists():
        return "moto_server is not installed (pip install 'moto[server]')"
    return None


def haproxy_missing() -> str | None:
    """Why haproxy cannot be started here, or None."""
    found = shutil.which("haproxy") or Path(HAPROXY).exists()
    return None if found else "haproxy is not installed (apt-get install haproxy)"


class Postgres:
    """A started cluster: :meth:`database` makes a fresh database, :meth:`cpu_seconds` is the cluster's CPU so far."""

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster

    def database(self) -> str:
        """A new, empty database's URL (its schema is made by the caller: ``schema.upgrade``)."""
        return self.cluster.database()

    @property
    def pid(self) -> int:
        """The postmaster's process id (its children are the backends serving the connections)."""
        return int((self.cluster.data / "postmaster.pid").read_text().split()[0])

    def cpu_seconds(self) -> float:
        """CPU seconds the whole cluster (postmaster and every backend) used so far."""
        return tree_cpu_seconds(self.pid)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster on 127.0.0.1 (:class:`PeerMissing` when it cannot start)."""
    reason = postgres_missing()
    if reason:
        raise PeerMissing(reason)
    # Not under the run's scratch directory: that is private to the harness's user, the cluster runs as another.
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="dockyard-bench-pg-")))
    try:
        cluster.start()
        yield Postgres(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@contextmanager
def moto(workdir: Path) -> Iterator[MotoS3]:
    """``moto_server`` on a free loopback port (:class:`PeerMissing` when it is not installed)."""
    reason = moto_missing()
    if reason:
        raise PeerMissing(reason)
    server = MotoS3(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
