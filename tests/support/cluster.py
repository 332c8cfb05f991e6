"""Replicas behind a load balancer on loopback: N ``dockyard serve`` processes sharing one metadata URL and one
storage URL, and Debian's haproxy in front of them (HTTP mode, round-robin, no stickiness, health checks on
``/readyz``). The cluster's ``url``/``host`` are the balancer's, like a :class:`~.servers.DockyardServer`'s, so a
test written against one server runs unchanged against the cluster."""

from __future__ import annotations

import csv
import io
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .peers import missing
from .servers import DockyardServer, _Process, free_port

#: Where Debian's haproxy package puts the program (sbin may not be on a user's PATH).
HAPROXY = "/usr/sbin/haproxy"


def require_haproxy() -> str:
    """The haproxy program; fails under CI=true (else skips) when it is not installed."""
    program = shutil.which("haproxy") or (HAPROXY if Path(HAPROXY).exists() else None)
    if program is None:
        missing("haproxy", "apt-get install haproxy")
    return program  # type: ignore[return-value]


def haproxy_config(port: int, stats_port: int, replicas: list[tuple[str, int]]) -> str:
    """An haproxy.cfg: one HTTP frontend on ``127.0.0.1:port`` balancing every request round-robin over
    ``replicas`` (no cookie, no stick table, no ``prefer-last-server``: consecutive requests on one client
    connection go to different replicas), each checked with ``GET /readyz`` every half second; a CSV stats page
    on ``stats_port``; one log line per request (``replica status method uri``) on standard output."""
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check" for name, p in replicas)
    return f"""global
    log stdout format raw local0 info
    maxconn 4000

defaults
    mode http
    log global
    log-format "%s %ST %HM %HU"
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 30s
    timeout http-keep-alive 30s

frontend registry
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1
{servers}

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


class Haproxy(_Process):
    """haproxy in the foreground (``-db``) with the configuration of :func:`haproxy_config`."""

    name = "haproxy"

    def __init__(self, workdir: Path, replicas: list[tuple[str, int]], program: str = HAPROXY) -> None:
        super().__init__(workdir)
        self.program = program
        self.stats_port = free_port()
        self.config_path = self.workdir / "haproxy.cfg"
        self.config_path.write_text(haproxy_config(self.port, self.stats_port, replicas))

    def command(self) -> list[str]:
        return [self.program, "-db", "-f", str(self.config_path)]

    def stats(self) -> list[dict[str, str]]:
        """The rows of haproxy's CSV statistics (frontend, backend and one per server)."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


class ReplicaCluster:
    """``replicas`` ``dockyard serve`` processes on one ``metadata_url`` and one ``storage_url`` (each with its own
    data dir, as on separate hosts) behind haproxy. ``extra`` adds flags to every replica, ``env`` variables
    (an object store's credentials). Every replica is told the balancer's URL with ``--public-url``."""

    def __init__(
        self,
        workdir: Path,
        *extra: str,
        replicas: int = 2,
        metadata_url: str,
        storage_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.metadata_url = metadata_url
        self.storage_url = storage_url
        self.env = dict(env or {})
        self.replicas: list[DockyardServer] = []
        for i in range(replicas):
            flags = ["--metadata-url", metadata_url]
            if storage_url:
                flags += ["--storage-url", storage_url]
            server = DockyardServer(self.workdir / f"replica-{i}", *flags, *extra)
            server.env = self.env
            self.replicas.append(server)
        self.balancer = Haproxy(self.workdir / "haproxy", [(self.name(i), r.port) for i, r in enumerate(self.replicas)],
                                program=require_haproxy())
        for server in self.replicas:
            server.extra += ["--public-url", self.balancer.url]

    @staticmethod
    def name(i: int) -> str:
        """The name of replica ``i`` in haproxy's configuration, statistics and log."""
        return f"r{i}"

    @property
    def host(self) -> str:
        return self.balancer.host

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def port(self) -> int:
        return self.balancer.port

    def start(self) -> ReplicaCluster:
        """Start every replica, then haproxy, and wait until haproxy sees every replica up."""
        try:
            with ThreadPoolExecutor(len(self.replicas)) as pool:
                list(pool.map(DockyardServer.start, self.replicas))
            self.balancer.start()
            for i in range(len(self.replicas)):
                self.wait_status(i, "UP")
        except BaseException:
            self.stop()
            raise
        return self

    def status(self, i: int) -> str:
        """haproxy's view of replica ``i``: ``UP``, ``DOWN``, or a transition such as ``UP 1/2``."""
        for row in self.balancer.stats():
            if row["pxname"] == "replicas" and row["svname"] == self.name(i):
                return row["status"]
        raise KeyError(self.name(i))

    def wait_status(self, i: int, wanted: str, timeout: float = 15.0) -> None:
        """Wait until haproxy reports replica ``i`` as exactly ``wanted`` (``UP`` or ``DOWN``)."""
        deadline = time.monotonic() + timeout
        while (seen := self.status(i)) != wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"haproxy reports {self.name(i)} as {seen!r}, not {wanted!r}:\n{self.log()}")
            time.sleep(0.1)

    def requests_per_replica(self) -> dict[str, int]:
        """How many HTTP requests haproxy has sent to each replica so far (health checks not counted)."""
        return {row["svname"]: int(row["req_tot"] or 0) for row in self.balancer.stats()
                if row["pxname"] == "replicas" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def log(self) -> str:
        """haproxy's log: one ``replica status method uri`` line per request."""
        return self.balancer.log()

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i`` (a crash); haproxy notices on its next health check."""
        self.replicas[i].kill()

    def restart(self, i: int) -> DockyardServer:
        """Start replica ``i`` again (same port, same flags) and wait until haproxy sends it requests again."""
        server = self.replicas[i]
        server.stop()
        server.start()
        self.wait_status(i, "UP")
        return server

    def stop(self) -> None:
        """Stop haproxy and every replica."""
        self.balancer.stop()
        for server in self.replicas:
            server.stop()

    def __enter__(self) -> ReplicaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
