"""A private PostgreSQL cluster for a test session: ``initdb`` in a temporary directory, its own port and socket
directory, listening on 127.0.0.1 only, run as an unprivileged user when the tests run as root; stopped after."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from tests.support.peers import missing
from tests.support.servers import free_port

#: Where Debian's postgresql package puts the server programs.
PG_BIN = Path("/usr/lib/postgresql/15/bin")
_databases = itertools.count()


def runuser_program() -> str | None:
    """util-linux's ``runuser`` (to run PostgreSQL as an unprivileged user when the tests run as root): on PATH, or
    in the sbin folder a user's PATH may lack; None when absent."""
    found = shutil.which("runuser")
    if found is not None:
        return found
    return next((str(path) for path in (Path("/usr/sbin/runuser"), Path("/sbin/runuser")) if path.exists()), None)


class PostgresCluster:
    """One cluster; :meth:`database` creates a fresh empty database and returns its ``postgresql://`` URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = free_port()
        self.user = "dockyard"
        self._run_as: list[str] = []

    def _cmd(self, *args: str) -> list[str]:
        return [*self._run_as, *args]

    def start(self) -> PostgresCluster:
        initdb = PG_BIN / "initdb"
        if not initdb.exists():
            missing("PostgreSQL 15", "apt-get install postgresql")
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:  # postgres refuses to run as root
            owner = pwd.getpwnam("nobody")
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            runuser = runuser_program()
            if runuser is None:
                missing("runuser (util-linux), to run PostgreSQL as an unprivileged user", "apt-get install util-linux")
            self._run_as = [runuser or "runuser", "-u", "nobody", "--"]
        self._checked(str(initdb), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync")
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._checked(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "30",
                      "-o", options, "start")
        return self

    def _checked(self, *args: str) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def database(self) -> str:
        """A new, empty database (its ``postgresql://`` URL)."""
        name = f"db{next(_databases)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql`` (as the cluster's superuser); its output."""
        psql = shutil.which("psql") or str(PG_BIN / "psql")
        done = subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database, "-Atc", statement],
            check=True, capture_output=True, text=True,
        )
        return done.stdout

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            capture_output=True,
        )
