"""Builders for registry test content: images, multi-arch indexes and artifacts, as exact bytes.

Everything here is deterministic for a given ``seed`` and built in memory first; then it can be

* written into an OCI image layout directory with :func:`write_to_layout` (through :mod:`dockyard.layout`), or
* pushed to any registry URL with :func:`push` (raw httpx: monolithic ``POST`` + ``PUT`` per blob, then the
  manifests, children before parents).

Typical use::

    image = make_image(layers=3, seed=1)                      # OCI image manifest, linux/amd64
    index = make_index([make_image(architecture="arm64", seed=2), image])
    artifact = make_artifact({"notes.txt": b"hi"}, subject=image)
    push(index, server.url, "team/app", tag="v1")
    write_to_layout(index, OCILayout(tmp_path / "oci").create(), tag="v1")

Every content object knows its ``body`` (the exact manifest bytes), ``media_type``, ``digest``, ``size``,
its own ``blobs`` (config and layers), its ``children`` (manifests an index lists) and can walk everything it
needs in push order (:meth:`Content.walk`, :meth:`Content.all_blobs`).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from dockyard.layout import OCILayout
from dockyard.oci import Descriptor, Platform, compute_digest
from dockyard.oci import mediatypes as mt

#: The annotation ORAS and the image-spec use for a file name.
TITLE_ANNOTATION = "org.opencontainers.image.title"
#: The bytes of the OCI empty descriptor (``application/vnd.oci.empty.v1+json``).
EMPTY_JSON = b"{}"
#: The ``created`` time every builder uses unless told otherwise.
DEFAULT_CREATED = "2024-01-02T03:04:05Z"


@dataclass(frozen=True)
class Blob:
    """A blob with its media type: a layer, a config or an artifact file."""

    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return compute_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> Descriptor:
        """The descriptor a manifest uses to point at this blob."""
        return Descriptor(self.media_type, self.digest, self.size, annotations=dict(self.annotations))

    def to_json(self) -> dict[str, Any]:
        return self.descriptor().to_json()


@dataclass(frozen=True)
class Content:
    """A manifest (image, artifact or index) as exact bytes plus everything it references.

    ``blobs`` are the blobs this manifest itself names (config first, then layers); ``children`` are the
    manifests an index lists (empty for an image); ``platform`` is what a parent index says about it.
    """

    body: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Content, ...] = ()
    platform: Platform | None = None
    artifact_type: str | None = None

    @property
    def digest(self) -> str:
        return compute_digest(self.body)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def json(self) -> dict[str, Any]:
        """The parsed manifest body."""
        return json.loads(self.body)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEX_TYPES

    def descriptor(self, *, with_platform: bool = True) -> Descriptor:
        """The descriptor an index (or ``subject``) uses to point at this manifest."""
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            platform=self.platform if with_platform else None,
            artifact_type=self.artifact_type,
        )

    def walk(self) -> Iterator[Content]:
        """Every manifest reachable from here, children before parents (the order a registry needs)."""
        for child in self.children:
            yield from child.walk()
        yield self

    def all_blobs(self) -> list[Blob]:
        """Every distinct blob reachable from here (configs and layers of all manifests), first seen first."""
        seen: dict[str, Blob] = {}
        for manifest in self.walk():
            for blob in manifest.blobs:
                seen.setdefault(blob.digest, blob)
        return list(seen.values())


def random_bytes(size: int, seed: int | str | None = None) -> bytes:
    """``size`` pseudo-random bytes, the same for the same ``seed`` (fresh randomness when ``seed`` is None)."""
    return random.Random(seed).randbytes(size)


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def make_layer(payload: bytes, *, name: str = "data.bin", docker: bool = False) -> tuple[Blob, str]:
    """A gzip-compressed tar layer holding ``payload`` as file ``name``; returns ``(blob, diff_id)``.

    The tar and gzip headers use fixed times, so equal payloads give equal digests.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    compressed = gzip.compress(tar_bytes, mtime=0)
    return Blob(mt.DOCKER_LAYER if docker else mt.OCI_LAYER_GZIP, compressed), compute_digest(tar_bytes)


def make_image(
    *,
    layers: int = 2,
    layer_size: int = 1024,
    docker: bool = False,
    architecture: str = "amd64",
    os: str = "linux",
    variant: str | None = None,
    created: str = DEFAULT_CREATED,
    seed: int | str | None = None,
    annotations: Mapping[str, str] | None = None,
    subject: Content | None = None,
    artifact_type: str | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> Content:
    """A runnable-looking image: ``layers`` gzip tar layers of ``layer_size`` random bytes each plus a config.

    ``docker=True`` uses Docker v2 schema 2 media types (manifest, config, layers); otherwise OCI. The config
    carries ``architecture``, ``os``, ``variant``, ``created``, ``rootfs.diff_ids`` and a history entry per layer;
    the returned content's ``platform`` is set, ready to go in an index. ``seed`` makes the bytes reproducible
    (different seeds give different layers). ``subject``/``artifact_type`` are OCI-only manifest fields.
    ``runtime`` adds to the config's ``config`` object (``Entrypoint``, ``Cmd``, ``Labels`` ...).
    """
    if docker and (subject is not None or artifact_type is not None):
        raise ValueError("subject and artifactType exist only in OCI manifests")
    rng_seed = f"{seed}-{architecture}-{os}-{variant}" if seed is not None else None
    layer_blobs: list[Blob] = []
    diff_ids: list[str] = []
    for i in range(layers):
        payload = random_bytes(layer_size, f"{rng_seed}-{i}" if rng_seed is not None else None)
        blob, diff_id = make_layer(payload, name=f"layer{i}.bin", docker=docker)
        layer_blobs.append(blob)
        diff_ids.append(diff_id)
    config_doc: dict[str, Any] = {
        "architecture": architecture,
        "os": os,
        "created": created,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], **(runtime or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"test layer {i}"} for i in range(layers)],
    }
    if variant:
        config_doc["variant"] = variant
    config = Blob(mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG, _dumps(config_doc))
    media_type = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        document["artifactType"] = artifact_type
    document["config"] = config.to_json()
    document["layers"] = [b.to_json() for b in layer_blobs]
    if subject is not None:
        document["subject"] = subject.descriptor(with_platform=False).to_json()
    if annotations:
        document["annotations"] = dict(annotations)
    return Content(
        body=_dumps(document),
        media_type=media_type,
        blobs=(config, *layer_blobs),
        platform=Platform(os=os, architecture=architecture, variant=variant),
        artifact_type=artifact_type,
    )


def make_index(
    children: Iterable[Content],
    *,
    docker: bool = False,
    annotations: Mapping[str, str] | None = None,
    subject: Content | None = None,
    artifact_type: str | None = None,
) -> Content:
    """An OCI image index (or, with ``docker=True``, a Docker manifest list) listing ``children``.

    Each child's descriptor carries its ``platform`` (images from :func:`make_image` have one; a nested index has
    none). A Docker manifest list may only list Docker manifests.
    """
    children = tuple(children)
    if docker and any(c.media_type not in (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST) for c in children):
        raise ValueError("a Docker manifest list may only list Docker manifests")
    media_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        document["artifactType"] = artifact_type
    document["manifests"] = [c.descriptor().to_json() for c in children]
    if subject is not None:
        document["subject"] = subject.descriptor(with_platform=False).to_json()
    if annotations:
        document["annotations"] = dict(annotations)
    return Content(body=_dumps(document), media_type=media_type, children=children, artifact_type=artifact_type)


def make_multiarch_index(
    platforms: Iterable[str] = ("linux/amd64", "linux/arm64"),
    *,
    docker: bool = False,
    layers: int = 2,
    layer_size: int = 1024,
    seed: int | str | None = None,
) -> Content:
    """An index with one image per platform (``"os/arch[/variant]"``), each with its own random layers."""
    images = []
    for text in platforms:
        plat = Platform.parse(text)
        images.append(
            make_image(
                layers=layers,
                layer_size=layer_size,
                docker=docker,
                architecture=plat.architecture or "amd64",
                os=plat.os or "linux",
                variant=plat.variant,
                seed=seed,
            )
        )
    return make_index(images, docker=docker)


def make_nested_index(*, seed: int | str | None = None, layer_size: int = 512) -> Content:
    """An OCI index whose children are a linux/amd64 image and another index (linux/arm64 + linux/arm/v7)."""
    inner = make_multiarch_index(("linux/arm64", "linux/arm/v7"), seed=f"{seed}-inner", layer_size=layer_size)
    outer_image = make_image(seed=f"{seed}-outer", layer_size=layer_size)
    return make_index([outer_image, inner])


def empty_config() -> Blob:
    """The OCI empty descriptor's blob: ``{}`` as ``application/vnd.oci.empty.v1+json``."""
    return Blob(mt.OCI_EMPTY, EMPTY_JSON)


def make_artifact(
    files: Mapping[str, bytes],
    *,
    artifact_type: str = "application/vnd.dockyard.test.v1",
    file_media_type: str = "application/vnd.dockyard.test.file.v1",
    subject: Content | None = None,
    annotations: Mapping[str, str] | None = None,
    inline_config: bool = True,
) -> Content:
    """An OCI artifact manifest: ``artifactType``, the empty config, one layer per file, an optional ``subject``.

    Each layer carries the file name as ``org.opencontainers.image.title`` (as ORAS writes it). With
    ``inline_config`` the config descriptor embeds its bytes in ``data`` (``e30=``), which the spec allows.
    """
    config = empty_config()
    config_json = config.to_json()
    if inline_config:
        config_json["data"] = base64.b64encode(EMPTY_JSON).decode()
    layer_blobs = [Blob(file_media_type, data, {TITLE_ANNOTATION: name}) for name, data in files.items()]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config_json,
        "layers": [b.to_json() for b in layer_blobs] or [config.to_json()],
    }
    if subject is not None:
        document["subject"] = subject.descriptor(with_platform=False).to_json()
    if annotations:
        document["annotations"] = dict(annotations)
    return Content(
        body=_dumps(document), media_type=mt.OCI_MANIFEST, blobs=(config, *layer_blobs), artifact_type=artifact_type
    )


# -- writing and pushing ------------------------------------------------------------------------------------------


def write_to_layout(content: Content, layout: OCILayout, tag: str | None = None) -> Descriptor:
    """Write every blob and manifest of ``content`` into ``layout`` and list the top manifest in ``index.json``.

    Returns the ``index.json`` entry (with the ref-name annotation when ``tag`` is given). Child manifests of an
    index are stored as blobs only, as ``skopeo copy --all`` leaves them.
    """
    for blob in content.all_blobs():
        layout.write_blob(blob.data, blob.digest)
    for manifest in content.walk():
        layout.write_blob(manifest.body, manifest.digest)
    return layout.add_manifest(content.descriptor(with_platform=False), tag)


def upload_blob(client: httpx.Client, base_url: str, repository: str, data: bytes, digest: str | None = None) -> str:
    """Monolithic upload (``POST`` then ``PUT …?digest=`` with the bytes); returns the digest. Raises on non-201."""
    digest = digest or compute_digest(data)
    start = client.post(f"{base_url}/v2/{repository}/blobs/uploads/")
    if start.status_code != 202:
        raise AssertionError(f"POST upload for {repository}: {start.status_code} {start.text}")
    location = httpx.URL(base_url).join(start.headers["Location"])
    finish = client.put(
        location.copy_merge_params({"digest": digest}),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if finish.status_code != 201:
        raise AssertionError(f"PUT upload for {repository} {digest}: {finish.status_code} {finish.text}")
    return digest


def put_manifest(
    client: httpx.Client, base_url: str, repository: str, content: Content, reference: str | None = None
) -> httpx.Response:
    """``PUT /v2/<repository>/manifests/<reference or digest>`` with the exact bytes; raises on non-201."""
    response = client.put(
        f"{base_url}/v2/{repository}/manifests/{reference or content.digest}",
        content=content.body,
        headers={"Content-Type": content.media_type},
    )
    if response.status_code != 201:
        raise AssertionError(f"PUT manifest {repository}:{reference}: {response.status_code} {response.text}")
    return response


def push(
    content: Content,
    base_url: str,
    repository: str,
    tag: str | None = None,
    *,
    client: httpx.Client | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> str:
    """Push ``content`` (blobs, then manifests children first) to the registry at ``base_url``; return its digest.

    Child manifests are pushed by digest; the top manifest by ``tag`` when given (else by digest). Blobs the
    registry already has (``HEAD`` 200) are not uploaded again. ``auth`` (for example ``("user", "pass")``) is
    used when no ``client`` is given. Any unexpected status raises ``AssertionError`` with the response text.
    """
    own = client is None
    http = client or httpx.Client(auth=auth, timeout=60.0)
    try:
        for blob in content.all_blobs():
            head = http.head(f"{base_url}/v2/{repository}/blobs/{blob.digest}")
            if head.status_code != 200:
                upload_blob(http, base_url, repository, blob.data, blob.digest)
        for manifest in content.walk():
            reference = tag if manifest is content and tag else None
            put_manifest(http, base_url, repository, manifest, reference)
        return content.digest
    finally:
        if own:
            http.close()


__all__ = [
    "DEFAULT_CREATED",
    "EMPTY_JSON",
    "TITLE_ANNOTATION",
    "Blob",
    "Content",
    "empty_config",
    "make_artifact",
    "make_image",
    "make_index",
    "make_layer",
    "make_multiarch_index",
    "make_nested_index",
    "push",
    "put_manifest",
    "random_bytes",
    "upload_blob",
    "write_to_layout",
]
