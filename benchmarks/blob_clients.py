"""B1/B2 client operations, each run by :mod:`benchmarks.worker` in a process of its own; each times only the
transfer itself."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.support.credentials import CountingCredential

from benchmarks.clientside import Stopwatch
from benchmarks.recycle import release


def _credential(auth: bool) -> CountingCredential | None:
    """The Entra-ID-style stand-in for servers with auth on (``--accept-any-aad-token``), else anonymous."""
    return CountingCredential() if auth else None


def upload_dockyard(url: str, repo: str, path: str, auth: bool = False) -> dict[str, Any]:
    from dockyard import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    with Stopwatch() as sw:
        digest, _ = client.upload_blob(repo, path)
    client.close()
    return {"seconds": sw.seconds, "digest": digest}


def upload_azure(url: str, repo: str, path: str, auth: bool = False) -> dict[str, Any]:
    from azure.containerregistry import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    with Stopwatch() as sw, open(path, "rb") as data:
        digest, _ = client.upload_blob(repo, data, enforce_https=False)
    client.close()
    return {"seconds": sw.seconds, "digest": digest}


def upload_oras(host: str, repo: str, path: str) -> dict[str, Any]:
    import oras.client
    import oras.oci

    client = oras.client.OrasClient(hostname=host, insecure=True)
    container = client.get_container(f"{host}/{repo}")
    with Stopwatch() as sw:
        layer = oras.oci.NewLayer(path, media_type="application/octet-stream")  # hashes the file: oras needs it first
        response = client.upload_blob(path, container, layer)
        response.raise_for_status()
    return {"seconds": sw.seconds, "digest": layer["digest"]}


def download_dockyard(url: str, repo: str, digest: str, out: str, auth: bool = False,
                      recycle: str | None = None) -> dict[str, Any]:
    from dockyard import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    release(recycle)
    with Stopwatch() as sw:
        client.download_blob_to_file(repo, digest, out)
    client.close()
    return {"seconds": sw.seconds}


def download_azure(url: str, repo: str, digest: str, out: str, auth: bool = False,
                   recycle: str | None = None) -> dict[str, Any]:
    from azure.containerregistry import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    release(recycle)
    with Stopwatch() as sw:
        stream = client.download_blob(repo, digest, enforce_https=False)
        with open(out, "wb") as fh:
            for chunk in stream:  # the stream checks the digest when exhausted
                fh.write(chunk)
    client.close()
    return {"seconds": sw.seconds}


def download_oras(host: str, repo: str, digest: str, out: str, recycle: str | None = None) -> dict[str, Any]:
    import oras.client

    client = oras.client.OrasClient(hostname=host, insecure=True)
    container = client.get_container(f"{host}/{repo}")
    release(recycle)
    with Stopwatch() as sw:
        client.download_blob(container, digest, out)
        # oras-py does not verify what it downloaded; verify as a careful caller would.
        hasher = hashlib.sha256()
        with open(out, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                hasher.update(chunk)
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise ValueError("digest mismatch")
    return {"seconds": sw.seconds}
