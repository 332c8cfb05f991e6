"""ORAS-compatible artifacts: push files and directories as an OCI artifact manifest, pull them back.

The manifest is an OCI image manifest with ``artifactType``, the empty config (``{}``) and one layer per file.
Each layer's ``org.opencontainers.image.title`` annotation holds the file name; directories are packed as
tar+gzip with ``io.deis.oras.content.unpack: "true"`` and the digest of the uncompressed tar in
``io.deis.oras.content.digest`` (as the ORAS CLI does). What ``oras push`` / oras-py push, this pulls, and the
other way round.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..oci import mediatypes as mt
from ..oci.manifest import EMPTY_DESCRIPTOR, EMPTY_JSON, EMPTY_JSON_DIGEST, Descriptor, parse_manifest
from .packing import file_digest, pack_directory
from .progress import NoProgress, TransferProgress
from .safe_extract import MAX_UNPACKED_SIZE, UnsafePathError, check_title, extract_directory_layer

TITLE_ANNOTATION = "org.opencontainers.image.title"
UNPACK_ANNOTATION = "io.deis.oras.content.unpack"
CONTENT_DIGEST_ANNOTATION = "io.deis.oras.content.digest"
#: ``artifactType`` when none is given (the ORAS CLI's default).
DEFAULT_ARTIFACT_TYPE = "application/vnd.unknown.artifact.v1"
#: Media type of a file layer when none is given (ORAS's default).
DEFAULT_FILE_MEDIA_TYPE = mt.OCI_LAYER
#: Media type of a packed directory.
DIRECTORY_MEDIA_TYPE = mt.OCI_LAYER_GZIP

class ArtifactError(ValueError):
    """An artifact that cannot be pushed or pulled as asked (missing file, index, unsafe name ...)."""


class NotAnArtifactError(ArtifactError):
    """The manifest has layers but none carries a file name: a container image (``is_image``) or an artifact of
    untitled blobs. Its files cannot be pulled; copy the whole thing instead (``dockyard copy REF oci:DIR``)."""

    def __init__(self, repository: str, reference: str, *, is_image: bool) -> None:
        what = "a container image" if is_image else "an artifact without file names"
        sep = "@" if ":" in reference else ":"
        super().__init__(f"{repository}{sep}{reference} is {what}: its layers carry no "
                         f"{TITLE_ANNOTATION} annotation, so there are no files to pull")
        self.is_image = is_image


@dataclass(frozen=True)
class FileSpec:
    """A file or directory to push, with an optional media type (``path:media/type`` on the command line)."""

    path: Path
    media_type: str | None = None

    @classmethod
    def parse(cls, text: str) -> FileSpec:
        """``PATH`` or ``PATH:MEDIA_TYPE`` (the ORAS syntax); a path that exists as written wins."""
        if Path(text).exists() or ":" not in text:
            return cls(Path(text))
        path, _, media_type = text.rpartition(":")
        if "/" not in media_type:
            return cls(Path(text))
        return cls(Path(path), media_type)


@dataclass
class PushResult:
    """What :func:`push_artifact` stored."""

    repository: str
    digest: str
    media_type: str
    size: int
    tag: str | None
    layers: list[Descriptor] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "media_type": self.media_type,
            "manifest_size": self.size,
            "tag": self.tag,
            "layers": [d.to_json() for d in self.layers],
        }


def build_manifest(
    layers: Sequence[Descriptor],
    *,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    subject: Descriptor | None = None,
) -> bytes:
    """The artifact manifest bytes (pure): empty config, ``layers`` (or the empty layer when there are none)."""
    config = EMPTY_DESCRIPTOR
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type or DEFAULT_ARTIFACT_TYPE,
        "config": config.to_json(),
        "layers": [d.to_json() for d in layers] if layers else [config.to_json()],
    }
    if subject is not None:
        document["subject"] = Descriptor(subject.media_type, subject.digest, subject.size).to_json()
    if annotations:
        document["annotations"] = dict(annotations)
    return json.dumps(document, separators=(",", ":")).encode()


def _prepare(spec: FileSpec, scratch: Path) -> tuple[Path, Descriptor]:
    """The file to upload for ``spec`` and its layer descriptor (directories are packed into ``scratch``)."""
    path = spec.path
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    title = path.resolve().name if path.name in ("", ".", "..") else path.name
    annotations = {TITLE_ANNOTATION: title}
    if path.is_dir():
        packed = scratch / f"{len(list(scratch.iterdir()))}-{title}.tar.gz"
        annotations[CONTENT_DIGEST_ANNOTATION] = pack_directory(path, packed)
        annotations[UNPACK_ANNOTATION] = "true"
        path, media_type = packed, spec.media_type or DIRECTORY_MEDIA_TYPE
    else:
        media_type = spec.media_type or DEFAULT_FILE_MEDIA_TYPE
    digest, size = file_digest(path)
    return path, Descriptor(media_type=media_type, digest=digest, size=size, annotations=annotations)


def push_artifact(
    client: Any,
    repository: str,
    files: Sequence[FileSpec | str | Path],
    *,
    tag: str | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    subject: str | None = None,
    progress: TransferProgress | None = None,
    concurrency: int = 4,
) -> PushResult:
    """Push ``files`` (files or directories) to ``repository`` as one artifact, tagged ``tag`` when given.

    ``subject`` (a tag or digest in the same repository) makes the artifact a referrer of that manifest.
    Blobs the repository already holds are not uploaded again; uploads run ``concurrency`` at a time.
    Interrupted (``KeyboardInterrupt``), it deletes the upload sessions it opened before re-raising.
    """
    progress = progress or NoProgress()
    specs = [f if isinstance(f, FileSpec) else FileSpec.parse(str(f)) for f in files]
    titles = [s.path.resolve().name for s in specs]
    if len(set(titles)) != len(titles):
        raise ArtifactError("two files have the same name; artifact file names must be unique")
    subject_descriptor = client.get_manifest_descriptor(repository, subject) if subject else None
    with tempfile.TemporaryDirectory(prefix="dockyard-push-") as scratch_dir:
        scratch = Path(scratch_dir)
        prepared = [_prepare(spec, scratch) for spec in specs]

        def upload(item: tuple[Path, Descriptor]) -> None:
            path, desc = item
            progress.blob_started(desc.digest, desc.size, desc.annotations[TITLE_ANNOTATION])
            client.upload_blob(
                repository,
                path,
                digest=desc.digest,
                size=desc.size,
                progress=lambda n, d=desc.digest: progress.blob_advanced(d, n),
            )
            progress.blob_finished(desc.digest)

        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        try:
            list(pool.map(upload, prepared))
        except KeyboardInterrupt:
            # Leave no upload session behind: stop the other uploads at their next piece, delete what they
            # opened, and again for any opened while they stopped.
            client.abort_uploads()
            pool.shutdown(wait=True, cancel_futures=True)
            client.abort_uploads()
            raise
        finally:
            pool.shutdown(wait=True)
        client.upload_blob(repository, EMPTY_JSON, digest=EMPTY_JSON_DIGEST, size=len(EMPTY_JSON))
    layers = [desc for _, desc in prepared]
    body = build_manifest(layers, artifact_type=artifact_type, annotations=annotations, subject=subject_descriptor)
    digest = client.set_manifest(repository, body, tag=tag, media_type=mt.OCI_MANIFEST)
    return PushResult(repository, digest, mt.OCI_MANIFEST, len(body), tag, layers)


def _is_packed_directory(layer: Descriptor, title: str) -> bool:
    """ORAS marks directories with the unpack annotation; oras-py only uses the tar+gzip media type."""
    if layer.annotations.get(UNPACK_ANNOTATION, "").lower() == "true":
        return True
    return layer.media_type == DIRECTORY_MEDIA_TYPE and not title.endswith((".tar.gz", ".tgz"))


@dataclass
class PullResult:
    """What :func:`pull_artifact` wrote."""

    digest: str
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "files": [str(p) for p in self.files], "skipped": self.skipped}


def pull_artifact(
    client: Any,
    repository: str,
    reference: str,
    output_dir: str | Path,
    *,
    progress: TransferProgress | None = None,
    concurrency: int = 4,
    force: bool = False,
    max_unpacked_size: int = MAX_UNPACKED_SIZE,
) -> PullResult:
    """Download the titled layers of artifact ``repository:reference`` into ``output_dir``.

    Each layer writes ``output_dir/<title>`` and nothing else: a file, or a packed directory unpacked by
    :func:`~dockyard.workflows.safe_extract.extract_directory_layer` (every entry under ``<title>/``).
    Layers without a title are skipped (as ORAS does). Before any download starts, titles that are not
    plain file names, titles used twice, and (unless ``force``) names that exist in ``output_dir`` already
    are refused. Downloads never read more than the layer's descriptor size; a directory layer may unpack
    to at most ``max_unpacked_size`` bytes.
    When no layer has a title (a container image), it raises :class:`NotAnArtifactError`.
    """
    progress = progress or NoProgress()
    root = Path(output_dir)
    result = client.get_manifest(repository, reference)
    manifest = parse_manifest(result.content, result.media_type)
    if manifest.is_index:
        raise ArtifactError(f"{repository}:{reference} is an index, not an artifact; pull one of its manifests")
    pulled = PullResult(result.digest)
    jobs: list[tuple[Descriptor, str, Path]] = []
    for layer in manifest.layers:
        title = layer.annotations.get(TITLE_ANNOTATION)
        if not title:
            pulled.skipped.append(layer.digest)
            continue
        try:
            check_title(title)
        except UnsafePathError as exc:
            raise ArtifactError(str(exc)) from None
        if any(title == other for _, other, _ in jobs):
            raise ArtifactError(f"refusing artifact: two layers are titled {title!r}")
        target = root / title
        if os.path.lexists(target) and not force:
            raise ArtifactError(f"{target} exists; pass --force to replace it")
        jobs.append((layer, title, target))
    if not jobs and manifest.layers:
        raise NotAnArtifactError(repository, reference, is_image=manifest.effective_artifact_type in mt.CONFIG_TYPES)
    root.mkdir(parents=True, exist_ok=True)

    def download(job: tuple[Descriptor, str, Path]) -> Path:
        layer, title, target = job
        progress.blob_started(layer.digest, layer.size, title)
        advance = lambda n, d=layer.digest: progress.blob_advanced(d, n)  # noqa: E731
        if _is_packed_directory(layer, title):
            with tempfile.TemporaryDirectory(prefix=".dockyard-pull-", dir=root) as scratch:
                archive = Path(scratch) / "layer.tar.gz"
                client.download_blob_to_file(repository, layer.digest, archive, progress=advance, size=layer.size)
                try:
                    extract_directory_layer(archive, root, title, replace=force, max_size=max_unpacked_size)
                except UnsafePathError as exc:
                    raise ArtifactError(str(exc)) from None
        elif target.is_dir() and not target.is_symlink():
            # --force over a directory: download first, then swap, so a failed download keeps the directory.
            with tempfile.TemporaryDirectory(prefix=".dockyard-pull-", dir=root) as scratch:
                fetched = Path(scratch) / "file"
                client.download_blob_to_file(repository, layer.digest, fetched, progress=advance, size=layer.size)
                os.rename(target, Path(scratch) / "previous")
                os.rename(fetched, target)
        else:
            client.download_blob_to_file(repository, layer.digest, target, progress=advance, size=layer.size)
        progress.blob_finished(layer.digest)
        return target

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        pulled.files = list(pool.map(download, jobs))
    return pulled
