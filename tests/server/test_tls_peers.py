"""Real clients trust ``dockyard serve --tls-cert/--tls-key`` through the CA that signed its certificate (made by
``openssl`` here): Microsoft's azure-containerregistry (``connection_verify``, no ``enforce_https`` opt-out),
dockyard's CLI (``--ca-file`` and ``SSL_CERT_FILE``), skopeo and podman (``--cert-dir``). Auth is on."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.layout import OCILayout
from tests.cli.conftest import Result, run_in_process
from tests.conftest import TEST_USER, unique
from tests.support.credentials import CountingCredential
from tests.support.images import Content, make_image, push, write_to_layout
from tests.support.peers import require_module, require_program
from tests.support.servers import DockyardServer, subprocess_env, write_htpasswd
from tests.support.skopeo import Skopeo
from tests.support.tls import CertificateAuthority

pytestmark = pytest.mark.peer("openssl")

AUDIENCE = "https://containerregistry.azure.net"
IMAGE_REPO = "secure/app"


class Registry:
    """The TLS server, its CA and what was pushed to it."""

    def __init__(self, server: DockyardServer, ca: CertificateAuthority, image: Content) -> None:
        self.server, self.ca, self.image = server, ca, image

    @property
    def host(self) -> str:
        return self.server.host

    def cert_dir(self, where: Path) -> Path:
        """A containers-style certificate directory (``ca.crt``) trusting the CA."""
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca.cert, where / "ca.crt")
        return where


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    workdir = tmp_path_factory.mktemp("tls-peers")
    ca = CertificateAuthority(workdir / "ca")
    cert, key = ca.issue()
    htpasswd = write_htpasswd(workdir / "htpasswd", dict([TEST_USER]))
    with DockyardServer(workdir, "--tls-cert", str(cert), "--tls-key", str(key), "--htpasswd", str(htpasswd),
                        "--accept-any-aad-token", ca=ca.cert) as server:
        image = make_image(layers=2, layer_size=1024, seed="tls-peers")
        with httpx.Client(verify=ssl.create_default_context(cafile=ca.cert), auth=TEST_USER, timeout=60) as http:
            push(image, server.url, IMAGE_REPO, "v1", client=http)
        yield Registry(server, ca, image)  # type: ignore[arg-type]


def test_azure_sdk_verifies_the_certificate_with_the_ca(registry: Registry) -> None:
    require_module("azure.containerregistry", "azure-containerregistry==1.2.0")
    from azure.containerregistry import ContainerRegistryClient
    from azure.core.exceptions import ServiceRequestError

    url = registry.server.url
    with ContainerRegistryClient(url, CountingCredential(), audience=AUDIENCE,
                                 connection_verify=str(registry.ca.cert)) as client:
        assert IMAGE_REPO in list(client.list_repository_names())
        assert [t.name for t in client.list_tag_properties(IMAGE_REPO)] == ["v1"]
        assert client.get_repository_properties(IMAGE_REPO).name == IMAGE_REPO
        manifest = client.get_manifest_properties(IMAGE_REPO, "v1")
        assert manifest.digest == registry.image.digest
    # Without the CA, the SDK refuses the certificate.
    with ContainerRegistryClient(url, CountingCredential(), audience=AUDIENCE, retry_total=0) as client, \
            pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get_repository_properties(IMAGE_REPO)


def test_dockyard_cli_trusts_the_ca_file_or_ssl_cert_file(registry: Registry, tmp_path: Path) -> None:
    env = subprocess_env()
    # SSL_CERT_FILE is the variable under test: the ones read before it (as requests does) are not set.
    for name in ("DOCKYARD_REGISTRY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        env.pop(name, None)
    (tmp_path / "docker").mkdir()
    env["DOCKER_CONFIG"] = str(tmp_path / "docker")

    def cli(*args: str, input: str, env: dict[str, str] | None = None) -> Result:
        return run_in_process(args, input, {**base, **(env or {})}, tmp_path)

    base = env
    url = registry.server.url
    login = ("-u", TEST_USER[0], "--password-stdin")
    listed = cli("tag", "list", "-r", url, IMAGE_REPO, *login, "--ca-file", str(registry.ca.cert), "-o", "json",
                 input=TEST_USER[1]).ok().json()
    assert [t["name"] for t in listed] == ["v1"]
    listed = cli("tag", "list", "-r", url, IMAGE_REPO, *login, "-o", "json", input=TEST_USER[1],
                 env={"SSL_CERT_FILE": str(registry.ca.cert)}).ok().json()
    assert [t["name"] for t in listed] == ["v1"]
    refused = cli("tag", "list", "-r", url, IMAGE_REPO, *login, input=TEST_USER[1]).failed()
    assert "--ca-file" in refused.stderr


def test_skopeo_copies_in_and_out_with_its_cert_dir(registry: Registry, tmp_path: Path) -> None:
    skopeo = Skopeo(tmp_path / "skopeo")
    certs = registry.cert_dir(tmp_path / "certs")
    creds = f"{TEST_USER[0]}:{TEST_USER[1]}"
    source = tmp_path / "source"
    write_to_layout(registry.image, OCILayout(source).create(), tag="v1")
    repo = unique("skopeo/tls")
    skopeo.run("copy", "--dest-cert-dir", str(certs), "--dest-creds", creds, f"oci:{source}:v1",
               f"docker://{registry.host}/{repo}:v1")
    back = tmp_path / "back"
    skopeo.run("copy", "--src-cert-dir", str(certs), "--src-creds", creds, f"docker://{registry.host}/{repo}:v1",
               f"oci:{back}:v1")
    assert OCILayout(back).resolve("v1").digest == registry.image.digest
    refused = skopeo.run("inspect", "--creds", creds, f"docker://{registry.host}/{repo}:v1", check=False)
    assert refused.returncode != 0 and "certificate" in refused.stderr


def test_podman_pulls_and_pushes_with_its_cert_dir(registry: Registry, tmp_path: Path) -> None:
    program = require_program("podman", "podman")
    env = {**subprocess_env(), "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path),
           "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    (tmp_path / "auth.json").write_text('{"auths": {}}\n')
    runroot = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))  # podman wants a short runroot path
    certs = registry.cert_dir(tmp_path / "certs")
    creds = f"{TEST_USER[0]}:{TEST_USER[1]}"

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [program, "--root", str(tmp_path / "root"), "--runroot", str(runroot), "--storage-driver", "vfs", *args],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    try:
        pulled = podman("pull", "--cert-dir", str(certs), "--creds", creds, f"{registry.host}/{IMAGE_REPO}:v1")
        assert pulled.returncode == 0, pulled.stderr
        repo = unique("podman/tls")
        pushed = podman("push", "--cert-dir", str(certs), "--creds", creds, f"{registry.host}/{IMAGE_REPO}:v1",
                        f"{registry.host}/{repo}:v1")
        assert pushed.returncode == 0, pushed.stderr
        with httpx.Client(verify=ssl.create_default_context(cafile=registry.ca.cert), auth=TEST_USER) as http:
            tags = http.get(f"{registry.server.url}/v2/{repo}/tags/list")
        assert tags.status_code == 200 and tags.json()["tags"] == ["v1"], tags.text
        refused = podman("pull", "--creds", creds, f"{registry.host}/{repo}:v1")
        assert refused.returncode != 0 and "certificate" in refused.stderr
    finally:
        shutil.rmtree(runroot, ignore_errors=True)
