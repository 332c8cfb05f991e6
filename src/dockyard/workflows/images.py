"""Looking into images on any registry: a whole-image summary (``image inspect``), the manifest digest of a
reference (``digest``) and an image's config blob (``config``), with an index narrowed to one platform.

Built on the SDK only (manifests, blobs, referrers), so it works the same against ACR, ``dockyard serve``,
CNCF distribution or any other OCI registry.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from ..oci import mediatypes as mt
from ..oci.digest import compute_digest
from ..oci.manifest import Descriptor, ImageConfig, Manifest, Platform, parse_image_config, parse_manifest

#: How deep indexes of indexes are followed.
MAX_INDEX_DEPTH = 8


def ref_name(repository: str, reference: str) -> str:
    """``repo:tag`` or ``repo@digest``."""
    return f"{repository}{'@' if ':' in reference else ':'}{reference}"


class ImageLookupError(ValueError):
    """The reference exists but cannot answer the question (no such platform, no image config ...)."""


@dataclass(frozen=True)
class ResolvedManifest:
    """A manifest fetched from a registry: exact bytes, parsed form, digest and media type."""

    body: bytes
    manifest: Manifest
    digest: str
    media_type: str


def fetch_manifest(client: Any, repository: str, reference: str) -> ResolvedManifest:
    """The manifest ``reference`` (a tag or digest) names in ``repository``, verified and parsed."""
    result = client.get_manifest(repository, reference)
    parsed = parse_manifest(result.content, result.media_type)
    return ResolvedManifest(result.content, parsed, result.digest, parsed.media_type)


def read_config(client: Any, repository: str, config: Descriptor) -> bytes:
    """The bytes of a config blob (verified against its digest), refused above :data:`mt.MAX_MANIFEST_SIZE`."""
    if config.size > mt.MAX_MANIFEST_SIZE:
        raise ImageLookupError(f"the config blob {config.digest} is {config.size} bytes; the limit is "
                               f"{mt.MAX_MANIFEST_SIZE}")
    if config.data is not None:  # inlined in the descriptor: no round trip
        try:
            inline = base64.b64decode(config.data, validate=True)
        except (binascii.Error, ValueError):
            inline = None
        if inline is not None and compute_digest(inline, config.digest.split(":", 1)[0]) == config.digest:
            return inline
    return b"".join(client.download_blob(repository, config.digest))


def image_config_of(client: Any, repository: str, manifest: Manifest) -> ImageConfig | None:
    """The parsed image config of an image manifest; ``None`` for artifacts whose config is not an image config."""
    if manifest.config is None or manifest.config.media_type not in mt.CONFIG_TYPES:
        return None
    return parse_image_config(read_config(client, repository, manifest.config))


def select_platform(
    client: Any, repository: str, root: ResolvedManifest, platform: Platform, *, depth: int = 0
) -> ResolvedManifest:
    """The image of ``platform`` in the index ``root`` (searched through nested indexes); ``root`` itself when
    it is an image of that platform (or says nothing about its platform)."""
    if not root.manifest.is_index:
        config = image_config_of(client, repository, root.manifest)
        if config is not None and config.platform.os and not config.platform.matches(platform):
            raise ImageLookupError(f"{root.digest} is an image for {config.platform}, not {platform}")
        return root
    if depth >= MAX_INDEX_DEPTH:
        raise ImageLookupError(f"indexes nested more than {MAX_INDEX_DEPTH} deep")
    for child in root.manifest.manifests:
        if child.platform is not None and child.platform.matches(platform):
            return fetch_manifest(client, repository, child.digest)
    for child in root.manifest.manifests:
        if child.media_type in mt.INDEX_TYPES:
            nested = fetch_manifest(client, repository, child.digest)
            try:
                return select_platform(client, repository, nested, platform, depth=depth + 1)
            except ImageLookupError:
                continue
    listed = ", ".join(str(c.platform) for c in root.manifest.manifests if c.platform is not None) or "none"
    raise ImageLookupError(f"the index {root.digest} has no manifest for {platform} (it has: {listed})")


def manifest_digest(client: Any, repository: str, reference: str, platform: Platform | None = None) -> str:
    """The digest of the manifest ``reference`` names (one ``HEAD``); with ``platform``, of that platform's image."""
    if platform is None:
        return str(client.get_manifest_descriptor(repository, reference).digest)
    return select_platform(client, repository, fetch_manifest(client, repository, reference), platform).digest


def image_config(client: Any, repository: str, reference: str, platform: Platform | None = None) -> bytes:
    """The config blob of the image ``reference`` names; an index needs ``platform`` (unless it has one image)."""
    root = fetch_manifest(client, repository, reference)
    if root.manifest.is_index:
        if platform is None:
            listed = [str(c.platform) for c in root.manifest.manifests if c.platform is not None]
            if len(root.manifest.manifests) != 1:
                count = len(root.manifest.manifests)
                raise ImageLookupError(f"{ref_name(repository, reference)} is an index of {count} manifests "
                                       f"({', '.join(listed) or 'no platforms'}): choose one with --platform OS/ARCH")
            root = fetch_manifest(client, repository, root.manifest.manifests[0].digest)
        else:
            root = select_platform(client, repository, root, platform)
    elif platform is not None:
        root = select_platform(client, repository, root, platform)
    if root.manifest.is_index or root.manifest.config is None:
        raise ImageLookupError(f"{root.digest} ({root.media_type}) has no config blob")
    return read_config(client, repository, root.manifest.config)


# -- inspect ------------------------------------------------------------------------------------------------------


@dataclass
class ImageSummary:
    """One image (or artifact) manifest: platform, config settings and layers."""

    digest: str
    media_type: str
    manifest_size: int
    platform: Platform | None
    config_descriptor: Descriptor | None
    config: ImageConfig | None
    layers: tuple[Descriptor, ...]
    artifact_type: str | None = None

    @property
    def layers_size(self) -> int:
        """The bytes of the layers, as the manifest declares them."""
        return sum(layer.size for layer in self.layers)

    @property
    def total_size(self) -> int:
        """Manifest + config + layers: what the registry stores for this image."""
        config = self.config_descriptor.size if self.config_descriptor is not None else 0
        return self.manifest_size + config + self.layers_size

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "artifact_type": self.artifact_type,
            "platform": str(self.platform) if self.platform is not None else None,
            "os": self.platform.os if self.platform else None,
            "architecture": self.platform.architecture if self.platform else None,
            "variant": self.platform.variant if self.platform else None,
            "created": cfg.created if cfg else None,
            "config": {
                "digest": self.config_descriptor.digest if self.config_descriptor else None,
                "media_type": self.config_descriptor.media_type if self.config_descriptor else None,
                "size": self.config_descriptor.size if self.config_descriptor else None,
                "entrypoint": list(cfg.entrypoint) if cfg and cfg.entrypoint is not None else None,
                "cmd": list(cfg.cmd) if cfg and cfg.cmd is not None else None,
                "env": list(cfg.env) if cfg else [],
                "labels": dict(cfg.labels) if cfg else {},
                "working_dir": cfg.working_dir if cfg else None,
                "user": cfg.user if cfg else None,
            },
            "layers": [{"digest": d.digest, "media_type": d.media_type, "size": d.size} for d in self.layers],
            "manifest_size": self.manifest_size,
            "layers_size": self.layers_size,
            "total_size": self.total_size,
        }


@dataclass
class ImageReport:
    """What ``image inspect`` shows: the manifest a reference names and every image under it."""

    reference: str
    digest: str
    media_type: str
    manifest_size: int
    artifact_type: str | None
    annotations: dict[str, str]
    subject: str | None
    referrers: int
    images: list[ImageSummary] = field(default_factory=list)
    #: Manifest sizes of the indexes under the root (not the root), by digest.
    nested_indexes: dict[str, int] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEX_TYPES

    @property
    def total_size(self) -> int:
        """Every distinct manifest and blob under the reference, counted once: what the registry stores for it."""
        sizes: dict[str, int] = {self.digest: self.manifest_size, **self.nested_indexes}
        for image in self.images:
            sizes[image.digest] = image.manifest_size
            if image.config_descriptor is not None:
                sizes[image.config_descriptor.digest] = image.config_descriptor.size
            for layer in image.layers:
                sizes[layer.digest] = layer.size
        return sum(sizes.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "media_type": self.media_type,
            "artifact_type": self.artifact_type,
            "is_index": self.is_index,
            "manifest_size": self.manifest_size,
            "total_size": self.total_size,
            "referrers": self.referrers,
            "subject": self.subject,
            "annotations": dict(self.annotations),
            "images": [image.to_json() for image in self.images],
        }


def _summary(client: Any, repository: str, item: ResolvedManifest, listed: Platform | None) -> ImageSummary:
    config = image_config_of(client, repository, item.manifest)
    platform = config.platform if config is not None and config.platform.os else listed
    return ImageSummary(
        digest=item.digest,
        media_type=item.media_type,
        manifest_size=len(item.body),
        platform=platform,
        config_descriptor=item.manifest.config,
        config=config,
        layers=item.manifest.layers,
        artifact_type=item.manifest.effective_artifact_type,
    )


def inspect_image(
    client: Any, repository: str, reference: str, *, platform: Platform | None = None, name: str | None = None
) -> ImageReport:
    """Summarise the image, index or artifact ``reference`` names: for an index one entry per image (nested
    indexes followed), with ``platform`` only that platform's image. ``name`` is how the report names it."""
    root = fetch_manifest(client, repository, reference)
    report = ImageReport(
        reference=name or ref_name(repository, reference),
        digest=root.digest,
        media_type=root.media_type,
        manifest_size=len(root.body),
        artifact_type=root.manifest.effective_artifact_type,
        annotations=dict(root.manifest.annotations),
        subject=root.manifest.subject.digest if root.manifest.subject else None,
        referrers=len(client.list_referrers(repository, root.digest)),
    )
    if platform is not None:
        chosen = select_platform(client, repository, root, platform)
        report.images.append(_summary(client, repository, chosen, platform))
        return report

    seen: set[str] = set()

    def visit(item: ResolvedManifest, listed: Platform | None, depth: int) -> None:
        if item.digest in seen:
            return
        seen.add(item.digest)
        if not item.manifest.is_index:
            report.images.append(_summary(client, repository, item, listed))
            return
        if depth >= MAX_INDEX_DEPTH:
            raise ImageLookupError(f"indexes nested more than {MAX_INDEX_DEPTH} deep")
        if item.digest != root.digest:
            report.nested_indexes[item.digest] = len(item.body)
        for child in item.manifest.manifests:
            visit(fetch_manifest(client, repository, child.digest), child.platform, depth + 1)

    visit(root, None, 0)
    return report
