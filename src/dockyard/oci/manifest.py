"""Manifest and image-config parsing and validation (OCI image-spec, Docker v2 schema 2).

Pure functions over bytes: the server uses them to validate pushes and derive metadata, the client to
walk images (copy, purge, properties on plain OCI registries).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes as mt
from .digest import InvalidDigestError, compute_digest, parse_digest
from .strict_json import InvalidJSONError, parse_json


class InvalidManifestError(ValueError):
    """Bytes that are not a valid manifest of the declared type."""


@dataclass(frozen=True)
class Platform:
    """The platform of an image: ``os/architecture[/variant]``."""

    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        text = f"{self.os or 'unknown'}/{self.architecture or 'unknown'}"
        return f"{text}/{self.variant}" if self.variant else text

    @classmethod
    def parse(cls, value: str) -> Platform:
        """Parse ``os/arch[/variant]`` (as ``--platform linux/arm64/v8``)."""
        parts = value.split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise ValueError(f"invalid platform {value!r}: expected os/arch[/variant]")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)

    def matches(self, wanted: Platform) -> bool:
        """True when this platform satisfies ``wanted`` (a missing variant in ``wanted`` matches any)."""
        return (
            self.os == wanted.os
            and self.architecture == wanted.architecture
            and (wanted.variant is None or self.variant == wanted.variant)
        )

    @classmethod
    def from_json(cls, data: Any) -> Platform | None:
        if not isinstance(data, dict):
            return None
        return cls(
            os=_opt_str(data.get("os")),
            architecture=_opt_str(data.get("architecture")),
            variant=_opt_str(data.get("variant")),
            os_version=_opt_str(data.get("os.version")),
        )


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob or a child manifest."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()
    data: str | None = None

    @property
    def is_nondistributable(self) -> bool:
        """True for foreign/non-distributable layers, which a registry need not hold."""
        return self.media_type in mt.NONDISTRIBUTABLE_LAYER_TYPES

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.data is not None:
            out["data"] = self.data
        if self.platform:
            plat = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.os_version:
                plat["os.version"] = self.platform.os_version
            if self.platform.variant:
                plat["variant"] = self.platform.variant
            out["platform"] = plat
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "descriptor") -> Descriptor:
        if not isinstance(data, dict):
            raise InvalidManifestError(f"{where}: expected an object")
        media_type = data.get("mediaType")
        digest = data.get("digest")
        size = data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidManifestError(f"{where}: mediaType is required")
        if not isinstance(digest, str):
            raise InvalidManifestError(f"{where}: digest is required")
        try:
            parse_digest(digest)
        except InvalidDigestError as exc:
            raise InvalidManifestError(f"{where}: {exc}") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidManifestError(f"{where}: size must be a non-negative integer")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise InvalidManifestError(f"{where}: annotations must map strings to strings")
        urls = data.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidManifestError(f"{where}: urls must be a list of strings")
        inline = data.get("data")
        if inline is not None and not isinstance(inline, str):
            raise InvalidManifestError(f"{where}: data must be base64 text")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=Platform.from_json(data.get("platform")),
            annotations=dict(annotations),
            artifact_type=_opt_str(data.get("artifactType")),
            urls=tuple(urls),
            data=inline,
        )


#: The OCI empty JSON blob (``{}``), its digest, and the image-spec's empty descriptor (bytes inline as ``data``).
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = compute_digest(EMPTY_JSON)
EMPTY_DESCRIPTOR = Descriptor(mt.OCI_EMPTY, EMPTY_JSON_DIGEST, len(EMPTY_JSON), data="e30=")


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: an image/artifact manifest (``config`` + ``layers``) or an index (``manifests``)."""

    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEX_TYPES

    @property
    def effective_artifact_type(self) -> str | None:
        """``artifactType``, else the config's media type (OCI referrers rule), for image manifests."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not self.is_index:
            return self.config.media_type
        return None

    def blobs(self) -> Iterator[Descriptor]:
        """Config and layers a registry must hold before accepting this manifest (non-distributable skipped)."""
        if self.config is not None:
            yield self.config
        for layer in self.layers:
            if not layer.is_nondistributable:
                yield layer


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_manifest(body: bytes, content_type: str | None = None) -> Manifest:
    """Parse and validate manifest ``body``.

    ``content_type`` is the media type the pusher declared (the ``Content-Type`` header); when it is missing
    or generic the body's ``mediaType`` decides. A body whose ``mediaType`` contradicts the declared type,
    or whose shape does not match its type, raises :class:`InvalidManifestError`.
    """
    if len(body) > mt.MAX_MANIFEST_SIZE:
        raise InvalidManifestError(f"manifest is {len(body)} bytes; the limit is {mt.MAX_MANIFEST_SIZE}")
    try:
        data = parse_json(body)
    except InvalidJSONError as exc:
        raise InvalidManifestError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidManifestError("manifest must be a JSON object")
    declared = (content_type or "").split(";")[0].strip().lower() or None
    if declared in (None, "application/json", "application/octet-stream", "*/*"):
        declared = None
    body_type = _opt_str(data.get("mediaType"))
    if declared and body_type and declared != body_type:
        raise InvalidManifestError(f"Content-Type {declared!r} does not match the manifest's mediaType {body_type!r}")
    media_type = declared or body_type
    if media_type is None:
        # An OCI manifest or index may omit mediaType; tell them apart by shape.
        media_type = mt.OCI_INDEX if "manifests" in data else mt.OCI_MANIFEST
    if data.get("schemaVersion") != 2 and media_type in mt.MANIFEST_TYPES:
        raise InvalidManifestError("schemaVersion must be 2")
    annotations = data.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InvalidManifestError("annotations must be an object")
    subject = Descriptor.from_json(data["subject"], "subject") if data.get("subject") is not None else None
    artifact_type = _opt_str(data.get("artifactType"))
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    if media_type in mt.INDEX_TYPES:
        children = data.get("manifests")
        if not isinstance(children, list):
            raise InvalidManifestError("an index needs a 'manifests' list")
        manifests = tuple(Descriptor.from_json(c, f"manifests[{i}]") for i, c in enumerate(children))
    elif media_type in mt.IMAGE_TYPES:
        if "config" not in data:
            raise InvalidManifestError("an image manifest needs a 'config' descriptor")
        image_layers = data.get("layers")
        if image_layers is None:
            image_layers = []
        if not isinstance(image_layers, list):
            raise InvalidManifestError("'layers' must be a list")
        config = Descriptor.from_json(data["config"], "config")
        layers = tuple(Descriptor.from_json(x, f"layers[{i}]") for i, x in enumerate(image_layers))
    else:
        # Another JSON manifest type (e.g. the ORAS artifact manifest): keep what we can read.
        blobs = data.get("blobs") or data.get("layers") or []
        if not isinstance(blobs, list):
            raise InvalidManifestError("'blobs' must be a list")
        layers = tuple(Descriptor.from_json(x, f"blobs[{i}]") for i, x in enumerate(blobs))
    return Manifest(
        media_type=media_type,
        config=config,
        layers=layers,
        manifests=manifests,
        subject=subject,
        artifact_type=artifact_type,
        annotations=dict(annotations),
    )


@dataclass(frozen=True)
class ImageConfig:
    """What dockyard reads from an image config: platform, creation time (RFC 3339 text) and the runtime
    settings of its ``config`` object (entrypoint, command, environment, labels, working directory, user)."""

    platform: Platform
    created: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None


def _opt_strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def parse_image_config(body: bytes) -> ImageConfig | None:
    """Read platform, ``created`` and the runtime settings from an image config; ``None`` when the bytes are
    not a JSON object. Fields of the wrong type read as absent."""
    try:
        data = parse_json(body)
    except InvalidJSONError:
        return None
    if not isinstance(data, dict):
        return None
    platform = Platform.from_json(data) or Platform()
    runtime = data.get("config")
    runtime = runtime if isinstance(runtime, dict) else {}
    labels = runtime.get("Labels")
    labels = labels if isinstance(labels, dict) else {}
    return ImageConfig(
        platform=platform,
        created=_opt_str(data.get("created")),
        entrypoint=_opt_strings(runtime.get("Entrypoint")),
        cmd=_opt_strings(runtime.get("Cmd")),
        env=_opt_strings(runtime.get("Env")) or (),
        labels={k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)},
        working_dir=_opt_str(runtime.get("WorkingDir")),
        user=_opt_str(runtime.get("User")),
    )
