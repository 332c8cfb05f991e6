"""docs/deploy.md runs as written where it can: its TOML file starts an https server, its nginx site terminates
TLS in front of a plain ``dockyard serve --public-url`` (its command line from the doc) that skopeo and
Microsoft's SDK push to and pull from with auth on, and its backup commands make a copy a new server serves."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tomllib

from dockyard.layout import OCILayout
from tests.conftest import TEST_USER, unique
from tests.support.credentials import CountingCredential
from tests.support.docs import fenced_block, replaced
from tests.support.images import make_image, push, write_to_layout
from tests.support.peers import require_module, require_program
from tests.support.servers import DockyardServer, free_port, subprocess_env, write_htpasswd
from tests.support.skopeo import Skopeo
from tests.support.tls import CertificateAuthority

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
AUDIENCE = "https://containerregistry.azure.net"


def doc_block(language: str, containing: str = "") -> str:
    """The first fenced ``language`` block of the doc that contains ``containing``."""
    return fenced_block(DOC, language, containing)




class CommandServer(DockyardServer):
    """``dockyard serve`` with exactly the given arguments (its port and scheme given too)."""

    def __init__(self, workdir: Path, args: list[str], port: int, ca: Path | None = None) -> None:
        super().__init__(workdir, ca=ca)
        self.args, self.port = args, port

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{self.host}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "dockyard", *self.args]


def _ca_context(ca: CertificateAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca.cert)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("deploy-ca"))


def test_the_config_file_of_the_doc_starts_an_https_server(tmp_path: Path, ca: CertificateAuthority) -> None:
    original = doc_block("toml", "data_dir")
    assert tomllib.loads(original)["port"] == 5000
    shown = subprocess.run([sys.executable, "-m", "dockyard", "serve", "--config", "/dev/stdin", "--print-config"],
                           input=original, capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert shown.returncode == 0, shown.stderr
    for line in doc_block("text", "# config file").splitlines():
        assert line == "..." or line in shown.stdout.splitlines(), line
    cert, key = ca.issue("configured")
    htpasswd = write_htpasswd(tmp_path / "htpasswd", dict([TEST_USER]))
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(replaced(original, {
        'host = "0.0.0.0"': 'host = "127.0.0.1"', "port = 5000": f"port = {port}",
        "/var/lib/dockyard/data": str(tmp_path / "data"), "/etc/dockyard/htpasswd": str(htpasswd),
        "/etc/dockyard/tls/registry.crt": str(cert), "/etc/dockyard/tls/registry.key": str(key),
    }))
    with CommandServer(tmp_path, ["serve", "--config", str(config)], port, ca=ca.cert) as server, \
            httpx.Client(base_url=server.url, verify=_ca_context(ca), timeout=30) as http:
        assert http.get("/v2/").status_code == 401
        assert http.get("/v2/", auth=TEST_USER).status_code == 200
        push(make_image(layers=1, layer_size=128), server.url, "doc/config", "v1",
             client=httpx.Client(verify=_ca_context(ca), auth=TEST_USER, timeout=30))


def _nginx_config(prefix: Path, site: str) -> Path:
    """A main nginx.conf of the test's own (pid, logs, temp files under ``prefix``) including the doc's site."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / name).mkdir(parents=True, exist_ok=True)
    temp = "".join(f"    {name}_temp_path {prefix / 'tmp' / name.split('_')[0]};\n"
                   for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    temp = temp.replace("client_body_temp_path " + str(prefix / "tmp" / "client"),
                        "client_body_temp_path " + str(prefix / "tmp" / "body"))
    conf = prefix / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\ndaemon off;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log off;\n{temp}{site}\n}}\n"
    )
    return conf


class Proxied:
    def __init__(self, url: str, host: str, server: DockyardServer, ca: CertificateAuthority) -> None:
        self.url, self.host, self.server, self.ca = url, host, server, ca


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority) -> Iterator[Proxied]:
    nginx = require_program("nginx", "nginx")
    workdir = tmp_path_factory.mktemp("nginx")
    cert, key = ca.issue("proxy")
    htpasswd = write_htpasswd(workdir / "htpasswd", dict([TEST_USER]))
    proxy_port, port = free_port(), free_port()
    public = f"https://127.0.0.1:{proxy_port}"
    command = doc_block("sh", "--public-url").replace("\\\n", " ")
    args = replaced(command, {
        "--port 5000": f"--port {port}", "/var/lib/dockyard/data": str(workdir / "data"),
        "/etc/dockyard/htpasswd": str(htpasswd), "https://registry.example.com": public,
    })
    argv = shlex.split(args)
    assert argv[:2] == ["dockyard", "serve"]
    # The SDK authenticates with an Entra ID token: the emulator's exchange stands in for Entra ID.
    server = CommandServer(workdir, [*argv[1:], "--accept-any-aad-token"], port)
    site = replaced(doc_block("nginx", "proxy_pass"), {
        "server 127.0.0.1:5000;": f"server 127.0.0.1:{port};", "listen 443 ssl;": f"listen 127.0.0.1:{proxy_port} ssl;",
        "/etc/nginx/tls/registry.crt": str(cert), "/etc/nginx/tls/registry.key": str(key),
    })
    conf = _nginx_config(workdir / "nginx", site)
    log = (workdir / "nginx.out").open("wb")
    with server:
        proc = subprocess.Popen([nginx, "-p", str(workdir / "nginx"), "-c", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, (workdir / "nginx.out").read_text()
                try:
                    socket.create_connection(("127.0.0.1", proxy_port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not listen within 20 s"
                    time.sleep(0.05)
            yield Proxied(public, f"127.0.0.1:{proxy_port}", server, ca)
        finally:
            proc.terminate()
            proc.wait(20)
            log.close()


def test_the_proxy_url_is_the_token_realm_and_locations_lead_to_it(proxied: Proxied) -> None:
    with httpx.Client(base_url=proxied.url, verify=_ca_context(proxied.ca), timeout=30) as http:
        challenge = http.get("/v2/").headers["WWW-Authenticate"]
        assert challenge == f'Bearer realm="{proxied.url}/oauth2/token",service="{proxied.host}"'
        started = http.post("/v2/proxied/blobs/uploads/", auth=TEST_USER)
        assert started.status_code == 202, started.text
        location = httpx.URL(proxied.url).join(started.headers["Location"])
        assert str(location).startswith(f"{proxied.url}/v2/proxied/blobs/uploads/")
        assert http.patch(location, content=b"abc", auth=TEST_USER).status_code == 202
        pushed = push(make_image(layers=1, layer_size=2048), proxied.url, "proxied/httpx", "v1",
                      client=httpx.Client(verify=_ca_context(proxied.ca), auth=TEST_USER, timeout=30))
        assert http.get("/acr/v1/proxied/httpx/_tags/v1", auth=TEST_USER).json()["registry"] == proxied.host
        assert http.get("/v2/proxied/httpx/manifests/v1", auth=TEST_USER,
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).headers[
            "Docker-Content-Digest"] == pushed


def test_skopeo_pushes_and_pulls_through_the_proxy(proxied: Proxied, tmp_path: Path) -> None:
    skopeo = Skopeo(tmp_path / "skopeo")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(proxied.ca.cert, certs / "ca.crt")
    image = make_image(layers=2, layer_size=4096, seed="nginx-skopeo")
    source = tmp_path / "source"
    write_to_layout(image, OCILayout(source).create(), tag="v1")
    repo, creds = unique("nginx/skopeo"), f"{TEST_USER[0]}:{TEST_USER[1]}"
    skopeo.run("copy", "--dest-cert-dir", str(certs), "--dest-creds", creds, f"oci:{source}:v1",
               f"docker://{proxied.host}/{repo}:v1")
    skopeo.run("copy", "--src-cert-dir", str(certs), "--src-creds", creds, f"docker://{proxied.host}/{repo}:v1",
               f"oci:{tmp_path / 'back'}:v1")
    assert OCILayout(tmp_path / "back").resolve("v1").digest == image.digest


def test_the_azure_sdk_pushes_and_pulls_through_the_proxy(proxied: Proxied) -> None:
    require_module("azure.containerregistry", "azure-containerregistry==1.2.0")
    from azure.containerregistry import ContainerRegistryClient

    image = make_image(layers=1, layer_size=4096, seed="nginx-sdk")
    repo = unique("nginx/sdk")
    with ContainerRegistryClient(proxied.url, CountingCredential(), audience=AUDIENCE,
                                 connection_verify=str(proxied.ca.cert)) as client:
        for blob in image.all_blobs():
            assert client.upload_blob(repo, io.BytesIO(blob.data)) == (blob.digest, len(blob.data))
        digest = client.set_manifest(repo, io.BytesIO(image.body), tag="v1", media_type=image.media_type)
        assert digest == image.digest
        got = client.get_manifest(repo, "v1")
        assert (got.digest, got.media_type) == (image.digest, image.media_type)
        layer = image.all_blobs()[-1]
        assert b"".join(client.download_blob(repo, layer.digest)) == layer.data
        assert [t.name for t in client.list_tag_properties(repo)] == ["v1"]
        assert repo in list(client.list_repository_names())


def test_the_backup_commands_make_a_copy_a_new_server_serves(proxied: Proxied, tmp_path: Path) -> None:
    require_program("sqlite3", "sqlite3")
    data = proxied.server.data_dir
    with httpx.Client(verify=_ca_context(proxied.ca), auth=TEST_USER, timeout=30) as http:
        digest = push(make_image(layers=1, layer_size=512, seed="backup"), proxied.url, "backup/app", "v1",
                      client=http)
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    script = replaced(doc_block("sh", ".backup"), {"/var/lib/dockyard/data": str(data), "/backup/dockyard":
                                                   str(backup)})
    subprocess.run(["bash", "-euc", script], check=True, timeout=60)
    restore = [line for line in doc_block("sh", "systemctl stop").splitlines() if line.startswith("cp ")]
    restored.mkdir(mode=0o700)
    subprocess.run(["bash", "-euc", replaced("\n".join(restore), {
        "/var/lib/dockyard/data": str(restored), "/backup/dockyard": str(backup)})], check=True, timeout=60)
    with DockyardServer(tmp_path / "server", data_dir=restored) as server:
        got = httpx.get(f"{server.url}/v2/backup/app/manifests/v1",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert got.headers["Docker-Content-Digest"] == digest
    verified = subprocess.run([sys.executable, "-m", "dockyard", "gc", "--data-dir", str(restored), "--verify",
                               "--dry-run"], capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert verified.returncode == 0, verified.stderr


def test_the_users_and_tokens_commands_of_the_doc_run(tmp_path: Path) -> None:
    """The "Users and tokens" blocks run as written, with the doc's paths moved into a temporary directory and the
    one interactive prompt (`user add alice`, which asks on a terminal) answered through --password-stdin."""
    paths = {"/etc/dockyard/htpasswd": str(tmp_path / "htpasswd"), "/var/lib/dockyard": str(tmp_path / "data")}
    users = replaced(doc_block("bash", "dockyard user add"), {
        "/etc/dockyard/htpasswd": paths["/etc/dockyard/htpasswd"],
        "dockyard user add alice --htpasswd": 'echo "$PASSWORD" | dockyard user add alice --password-stdin --htpasswd',
    })
    tokens = replaced(doc_block("bash", "dockyard token create ci"), {"/var/lib/dockyard": paths["/var/lib/dockyard"]})
    env = {**subprocess_env(), "PASSWORD": "a-long-enough-password"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", users + tokens], capture_output=True, text=True, env=env,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, ran.stderr
    assert '"password"' in ran.stdout, ran.stdout  # token create -o json shows the password once
    htpasswd = (tmp_path / "htpasswd").read_text()
    assert "ci-admin:" in htpasswd and "alice:" not in htpasswd  # added, then deleted again by the doc
    listed = subprocess.run(
        [sys.executable, "-m", "dockyard", "token", "list", "--data-dir", str(tmp_path / "data"), "-o", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "puller" in listed.stdout and '"ci"' not in listed.stdout  # ci was deleted at the end of the block
