"""Putting benchmark fixtures into a registry with plain HTTP (OCI distribution API), independent of the SDK.

Setup must not depend on the code being measured, so these helpers speak the wire protocol directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx

from dockyard.oci.digest import compute_digest
from dockyard.oci.mediatypes import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST


def http_client(base_url: str, auth: tuple[str, str] | None = None) -> httpx.Client:
    """A client for ``base_url``; ``auth`` is sent as Basic on every request."""
    return httpx.Client(base_url=base_url, auth=auth, timeout=600.0, trust_env=False)


def _file_chunks(path: Path, size: int = 4 * 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def push_blob(client: httpx.Client, repo: str, digest: str, data: bytes | Path) -> None:
    """Monolithic upload: POST a session, PUT the bytes with ``?digest=``."""
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    started.raise_for_status()
    location = urljoin(str(client.base_url), started.headers["Location"])
    sep = "&" if "?" in location else "?"
    content = _file_chunks(data) if isinstance(data, Path) else data
    size = data.stat().st_size if isinstance(data, Path) else len(data)
    done = client.put(f"{location}{sep}digest={digest}", content=content,
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
    done.raise_for_status()


def blob_size(client: httpx.Client, repo: str, digest: str) -> int | None:
    """The size the registry reports for a blob, or None when it does not have it."""
    response = client.head(f"/v2/{repo}/blobs/{digest}")
    return int(response.headers.get("Content-Length", "0")) if response.status_code == 200 else None


def small_image(client: httpx.Client, repo: str) -> tuple[bytes, str, str]:
    """Push a one-layer image (small config and layer) without a tag; returns (manifest, its digest, layer digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = b"benchmark layer\n" * 64
    push_blob(client, repo, compute_digest(config), config)
    push_blob(client, repo, compute_digest(layer), layer)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": compute_digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": compute_digest(layer), "size": len(layer)}],
    }).encode()
    return manifest, compute_digest(manifest), compute_digest(layer)


def put_manifest(client: httpx.Client, repo: str, reference: str, manifest: bytes) -> None:
    """PUT a manifest under a tag or digest."""
    response = client.put(f"/v2/{repo}/manifests/{reference}", content=manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    response.raise_for_status()
