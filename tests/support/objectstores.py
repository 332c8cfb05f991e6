"""Object storage emulators on loopback: ``moto_server`` (S3) and Azurite (Azure Blob), each with a fresh
bucket/container per call of :meth:`new_url`, and the environment a ``dockyard serve`` needs to reach them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess
import sys
import time
import uuid
from email.utils import formatdate
from pathlib import Path

import httpx

from .peers import missing
from .servers import free_port

#: Azurite's well-known development account (documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Emulator:
    """One emulator process on a free loopback port; :meth:`stop` ends it."""

    scheme = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Emulator:
        log = (self.workdir / "emulator.log").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command()[0]} exited: {(self.workdir / 'emulator.log').read_text()}")
            try:
                httpx.get(self.endpoint, timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.command()[0]} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def env(self) -> dict[str, str]:
        """Environment variables that point a store client at this emulator."""
        raise NotImplementedError

    def create_container(self, name: str) -> None:
        raise NotImplementedError

    def new_url(self, prefix: str = "registry") -> str:
        """A storage URL in a new, empty bucket/container."""
        name = f"t{uuid.uuid4().hex[:20]}"
        self.create_container(name)
        return f"{self.scheme}://{name}/{prefix}"


class MotoS3(Emulator):
    """``moto_server`` speaking S3."""

    scheme = "s3"

    def command(self) -> list[str]:
        program = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        return [program, "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}

    def create_container(self, name: str) -> None:
        httpx.put(f"{self.endpoint}/{name}", timeout=10).raise_for_status()


class AzuriteBlob(Emulator):
    """Azurite's Blob service (path-style URLs, its development account)."""

    scheme = "az"

    def command(self) -> list[str]:
        return ["azurite-blob", "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location",
                str(self.workdir / "data"), "--skipApiVersionCheck", "--disableTelemetry", "--silent"]

    def env(self) -> dict[str, str]:
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint={self.endpoint}/{AZURITE_ACCOUNT};")
        return {"AZURE_STORAGE_CONNECTION_STRING": connection}

    def create_container(self, name: str) -> None:
        """``Create Container`` signed with the account key (Shared Key)."""
        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
        canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        to_sign = "PUT\n" + "\n" * 11 + canonical + resource
        signature = base64.b64encode(
            hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
        response = httpx.put(f"{self.endpoint}/{AZURITE_ACCOUNT}/{name}?restype=container", headers=headers,
                             timeout=10)
        response.raise_for_status()


def start_emulator(kind: str, workdir: Path) -> Emulator:
    """Start ``s3`` (moto) or ``az`` (Azurite); fails under CI=true (else skips) when it is not installed."""
    if kind == "s3":
        if shutil.which("moto_server") is None and not (Path(sys.executable).parent / "moto_server").exists():
            missing("moto_server", "pip install 'moto[server]'")
        return MotoS3(workdir).start()
    if shutil.which("azurite-blob") is None:
        missing("azurite-blob", "npm install -g azurite")
    return AzuriteBlob(workdir).start()
