"""``dockyard serve --tls-cert/--tls-key``: https on the one port, a CA-signed certificate, reload on SIGHUP (one
process and ``--workers``), clear start-up errors; and ``--public-url`` in the token realm and ``Location``."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.images import make_image, push
from tests.support.servers import DockyardServer, free_port, subprocess_env, write_htpasswd
from tests.support.tls import CertificateAuthority, served_certificate

pytestmark = pytest.mark.peer("openssl")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


def _tls_files(ca: CertificateAuthority, where: Path, name: str = "server") -> tuple[Path, Path]:
    """A fresh certificate and key copied to ``where`` (the paths the server is given)."""
    cert, key = ca.issue(name)
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(cert, where / "tls.crt")
    shutil.copy(key, where / "tls.key")
    return where / "tls.crt", where / "tls.key"


@pytest.fixture
def tls_server(tmp_path: Path, ca: CertificateAuthority, request: pytest.FixtureRequest) -> Iterator[DockyardServer]:
    workers = getattr(request, "param", 1)
    cert, key = _tls_files(ca, tmp_path / "tls")
    server = DockyardServer(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--workers", str(workers),
                            ca=ca.cert)
    with server:
        yield server


def _serial(pem: str) -> int:
    der = ssl.PEM_cert_to_DER_cert(pem)
    return int(subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                              capture_output=True, check=True, timeout=30).stdout.split(b"=")[1], 16)


def test_https_with_the_ca_signed_certificate_and_no_plain_listener(tls_server: DockyardServer,
                                                                     ca: CertificateAuthority) -> None:
    assert tls_server.url.startswith("https://")
    assert "serving https://127.0.0.1:" in tls_server.log()
    with httpx.Client(verify=ssl.create_default_context(cafile=ca.cert), timeout=30) as http:
        assert http.get(f"{tls_server.url}/v2/").status_code == 200
        digest = push(make_image(layers=1, layer_size=256), tls_server.url, "tls/repo", "v1", client=http)
        assert http.get(f"{tls_server.url}/v2/tls/repo/manifests/v1",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).headers[
            "Docker-Content-Digest"] == digest
    # Without the CA the certificate is refused; plain HTTP on the same port gets no answer.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.url}/v2/", timeout=10)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{tls_server.host}/v2/", timeout=10)


def _workers(pid: int) -> set[str]:
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


@pytest.mark.parametrize("tls_server", [1, 2], indirect=True, ids=["one-process", "two-workers"])
def test_sighup_serves_the_replaced_certificate_without_a_restart(tls_server: DockyardServer,
                                                                   ca: CertificateAuthority, tmp_path: Path) -> None:
    assert tls_server.proc is not None
    before = served_certificate(tls_server.port)
    children = _workers(tls_server.proc.pid)
    _tls_files(ca, tmp_path / "tls", name="renewed")
    new = (tmp_path / "tls" / "tls.crt").read_text()
    assert _serial(new) != _serial(before)
    # Files replaced, no signal yet: nothing changes.
    assert _serial(served_certificate(tls_server.port)) == _serial(before)
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while _serial(served_certificate(tls_server.port)) != _serial(new):
        assert time.monotonic() < deadline, tls_server.log()
        time.sleep(0.1)
    # Every process reloaded: each new handshake (spread over the workers) presents the new certificate.
    deadline = time.monotonic() + 10
    while not all(_serial(served_certificate(tls_server.port)) == _serial(new) for _ in range(8)):
        assert time.monotonic() < deadline, tls_server.log()
        time.sleep(0.1)
    assert tls_server.proc.poll() is None
    assert _workers(tls_server.proc.pid) == children, "the workers were not replaced"
    with httpx.Client(verify=ssl.create_default_context(cafile=ca.cert), timeout=30) as http:
        assert http.get(f"{tls_server.url}/v2/").status_code == 200


def test_sighup_with_unusable_files_keeps_the_old_certificate(tls_server: DockyardServer, tmp_path: Path) -> None:
    assert tls_server.proc is not None
    before = served_certificate(tls_server.port)
    (tmp_path / "tls" / "tls.key").write_text("not a key\n")
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "keeping the previous TLS certificate" not in tls_server.log():
        assert time.monotonic() < deadline, tls_server.log()
        time.sleep(0.1)
    assert tls_server.proc.poll() is None
    assert served_certificate(tls_server.port) == before


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sighup_during_start_up_is_handled_by_every_process(tmp_path: Path, ca: CertificateAuthority,
                                                              workers: int) -> None:
    """The banner comes before uvicorn builds each process's TLS context: a SIGHUP then must neither stop the
    server nor a worker being spawned, and each process reloads once its handler is in place."""
    cert, key = _tls_files(ca, tmp_path / "tls")
    port, output = free_port(), tmp_path / "serve.log"
    with output.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
             "--tls-cert", str(cert), "--tls-key", str(key), "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
    try:
        _wait_for(lambda: "serving https://" in output.read_text() or proc.poll() is not None, "no banner")
        proc.send_signal(signal.SIGHUP)
        context = ssl.create_default_context(cafile=ca.cert)

        def answers() -> bool:
            assert proc.poll() is None, f"SIGHUP stopped the server:\n{output.read_text()}"
            try:
                return httpx.get(f"https://127.0.0.1:{port}/v2/", verify=context, timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(answers, "the server did not answer")
        _wait_for(lambda: output.read_text().count("reloaded the TLS certificate") == workers,
                  f"not every process reloaded:\n{output.read_text()}")
        assert "died" not in output.read_text()
    finally:
        proc.terminate()
        proc.wait(30)


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
         *flags],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )


def test_a_key_that_does_not_match_the_certificate_is_a_one_line_error(tmp_path: Path,
                                                                        ca: CertificateAuthority) -> None:
    cert, _ = ca.issue("one")
    _, other_key = ca.issue("two")
    result = _serve(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert result.returncode == 1
    assert result.stderr.startswith("error: TLS certificate") and "cannot be used" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "serving" not in result.stdout


def test_a_certificate_without_its_key_is_a_usage_error(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert, _ = ca.issue("alone")
    result = _serve(tmp_path, "--tls-cert", str(cert))
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr


@pytest.mark.parametrize("url", ["ftp://registry.example", "https://", "https://registry.example/sub/path",
                                 "https://user:pw@registry.example", "https://registry.example:99999"])
def test_an_unusable_public_url_is_refused_at_start(tmp_path: Path, url: str) -> None:
    result = _serve(tmp_path, "--public-url", url)
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid --public-url"), result.stderr
    assert "serving" not in result.stdout


def test_public_url_names_the_token_realm_and_service(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "secret"})
    public = "https://registry.example.test:8443"
    with DockyardServer(tmp_path, "--htpasswd", str(htpasswd), "--public-url", public + "/") as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        challenge = http.get("/v2/").headers["WWW-Authenticate"]
        assert challenge == f'Bearer realm="{public}/oauth2/token",service="registry.example.test:8443"'
        http.auth = ("alice", "secret")
        started = http.post("/v2/proxied/repo/blobs/uploads/")
        assert started.status_code == 202, started.text
        # Relative, as ACR sends it: resolved against the URL the client used (Microsoft's SDK needs a path).
        assert started.headers["Location"].startswith("/v2/proxied/repo/blobs/uploads/")
        token = http.post("/oauth2/token", data={"grant_type": "password", "service": "registry.example.test:8443",
                                                 "scope": "registry:catalog:*", "username": "alice",
                                                 "password": "secret"})
        assert token.status_code == 200, token.text


def test_a_large_upload_over_tls_round_trips(tls_server: DockyardServer, ca: CertificateAuthority) -> None:
    """A ``Content-Length`` body of several MiB is received into the server's pooled buffers through TLS too."""
    data = os.urandom(5 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=tls_server.url, verify=ssl.create_default_context(cafile=ca.cert), timeout=60) as http:
        started = http.post("/v2/tls/large/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = http.put(started.headers["Location"], params={"digest": digest}, content=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
        assert http.get(f"/v2/tls/large/blobs/{digest}").content == data
