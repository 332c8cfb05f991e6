"""docs/scale-out.md runs as written, moved onto loopback: its SQL makes the role and database in the session's
PostgreSQL cluster and ``dockyard db upgrade`` the schema, its variables point two replicas at that database and a
moto bucket, its secrets commands make the shared token key and htpasswd file, its ``dockyard serve`` command starts
both replicas, and its haproxy.cfg (TLS at haproxy) balances them: pushes and pulls through it work with auth on,
the token realm is the public URL, and both replicas answer requests."""

from __future__ import annotations

import os
import shlex
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_USER
from tests.server.test_deploy_doc import CommandServer
from tests.support.cluster import require_haproxy
from tests.support.docs import fenced_block, replaced
from tests.support.images import make_image, push
from tests.support.objectstores import Emulator
from tests.support.postgres import PostgresCluster
from tests.support.servers import _Process, free_port, subprocess_env
from tests.support.tls import CertificateAuthority

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"


def doc_block(language: str, containing: str = "") -> str:
    """The first fenced ``language`` block of the doc that contains ``containing``."""
    return fenced_block(DOC, language, containing)


class DocHaproxy(_Process):
    """haproxy in the foreground with the doc's configuration."""

    name = "haproxy"

    def __init__(self, workdir: Path, config: str, port: int, ca: Path) -> None:
        super().__init__(workdir)
        self.port, self.ca = port, ca
        self.config = self.workdir / "haproxy.cfg"
        self.config.write_text(config)

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def verify(self) -> bool | ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def command(self) -> list[str]:
        return [require_haproxy(), "-db", "-f", str(self.config)]


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, ran.stderr
    return ran


def test_the_two_replica_walkthrough_runs(
    postgres_cluster: PostgresCluster, object_storage: Callable[[str], Emulator], tmp_path: Path
) -> None:
    require_haproxy()
    moto = object_storage("s3")
    bucket_url = moto.new_url("prod")
    bucket = bucket_url.split("/")[2]
    etc = tmp_path / "etc"
    pg = f"-h 127.0.0.1 -p {postgres_cluster.port} -U {postgres_cluster.user}"
    env = subprocess_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    # 1. The database, and its schema; 4. the replicas' environment.
    database = replaced(doc_block("sh", "CREATE ROLE"), {"-h db.example.com -U postgres": pg,
                                                          "db.example.com:5432": f"127.0.0.1:{postgres_cluster.port}"})
    exports = replaced(doc_block("sh", "DOCKYARD_STORAGE_URL='s3://"), {
        "db.example.com:5432": f"127.0.0.1:{postgres_cluster.port}", "s3://team-registry/prod": bucket_url,
        "AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=AKIAEXAMPLE AWS_SECRET_ACCESS_KEY=example-secret":
            " ".join(f"{k}={v}" for k, v in moto.env().items()),
    })
    _run(database, env)
    shown = _run(exports + "env -0\n", env).stdout
    replica_env = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
    assert replica_env["DOCKYARD_STORAGE_URL"].startswith(f"s3://{bucket}/")
    assert postgres_cluster.sql("SELECT rolname FROM pg_roles WHERE rolname = 'registry'").strip() == "registry"

    # 3. The shared secrets (the one interactive prompt answered through --password-stdin).
    secrets = replaced(doc_block("sh", "openssl rand -hex 32"), {
        "/etc/dockyard": str(etc),
        "dockyard user add alice --htpasswd": 'echo "$PASSWORD" | dockyard user add alice --password-stdin --htpasswd',
    })
    _run(secrets, {**env, "PASSWORD": TEST_USER[1]})
    assert (etc / "token-key").stat().st_mode & 0o777 == 0o600
    user = ("alice", TEST_USER[1])

    # 4. Two replicas from the doc's command; 5. haproxy with the doc's configuration, TLS at haproxy.
    ca = CertificateAuthority(tmp_path / "ca")
    cert, key = ca.issue("balancer")
    pem = tmp_path / "registry.pem"
    pem.write_text(Path(cert).read_text() + Path(key).read_text())
    lb_port = free_port()
    public = f"https://127.0.0.1:{lb_port}"
    command = doc_block("sh", "dockyard serve").replace("\\\n", " ")
    replicas = []
    for i in range(2):  # the doc's command is for the first host; the second differs only in --host
        port = free_port()
        argv = shlex.split(replaced(command, {
            "--host 10.0.0.11 --port 5000": f"--host 127.0.0.1 --port {port}",
            "/var/lib/dockyard/data": str(tmp_path / f"replica-{i}" / "data"), "/etc/dockyard": str(etc),
            "https://registry.example.com": public,
        }))
        assert argv[:2] == ["dockyard", "serve"]
        server = CommandServer(tmp_path / f"replica-{i}", argv[1:], port)
        server.env = {k: v for k, v in replica_env.items() if k.startswith(("DOCKYARD_", "AWS_"))}
        replicas.append(server)
    config = replaced(doc_block("haproxy", "balance roundrobin"), {
        "bind :443 ssl crt /etc/haproxy/registry.pem": f"bind 127.0.0.1:{lb_port} ssl crt {pem}",
        "10.0.0.11:5000": f"127.0.0.1:{replicas[0].port}", "10.0.0.12:5000": f"127.0.0.1:{replicas[1].port}",
    })
    balancer = DocHaproxy(tmp_path / "haproxy", config, lb_port, Path(ca.cert))
    try:
        for server in replicas:
            server.start()
        balancer.start()
        _wait_until_both_replicas_answer(balancer, replicas)
        with httpx.Client(base_url=public, verify=balancer.verify(), timeout=30) as http:
            challenge = http.get("/v2/").headers["WWW-Authenticate"]
            assert challenge == f'Bearer realm="{public}/oauth2/token",service="127.0.0.1:{lb_port}"'
        image = make_image(layers=2, layer_size=300_000, seed="scale-out-doc")
        with httpx.Client(verify=balancer.verify(), auth=user, timeout=60,
                          follow_redirects=True) as http:
            assert push(image, public, "team/app", "v1", client=http) == image.digest
            for blob in image.all_blobs():
                assert http.get(f"{public}/v2/team/app/blobs/{blob.digest}").content == blob.data
            # A bearer token (the flow docker and the SDKs use) from whichever replica, on every replica.
            token = http.get(f"{public}/oauth2/token", params={"service": f"127.0.0.1:{lb_port}",
                                                                "scope": "repository:team/app:pull"}).json()
        for server in replicas:
            assert "repo=team/app" in server.log(), "both replicas took part in the push (round-robin)"
        for server in replicas:
            got = httpx.get(f"{server.url}/v2/team/app/manifests/v1",
                            headers={"Authorization": f"Bearer {token['access_token']}", "Accept": image.media_type})
            assert (got.status_code, got.content) == (200, image.body)
    finally:
        balancer.stop()
        for server in replicas:
            server.stop()


def _wait_until_both_replicas_answer(balancer: DocHaproxy, replicas: list[CommandServer]) -> None:
    """haproxy starts with every server up; wait (bounded) until /readyz answers 200 through it twice in a row."""
    deadline = time.monotonic() + 20
    with httpx.Client(verify=balancer.verify(), timeout=5) as http:
        while sum(http.get(f"{balancer.url}/readyz").status_code == 200 for _ in range(2)) < 2:
            if time.monotonic() > deadline:
                pytest.fail(f"the balancer did not reach both replicas:\n{balancer.log()}")
            time.sleep(0.2)
