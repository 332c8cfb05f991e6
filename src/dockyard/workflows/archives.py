"""Image archives as copy sources and destinations: ``oci-archive:FILE`` and ``docker-archive:FILE``.

* An **oci-archive** is a tar of an OCI image layout (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``), as
  ``skopeo copy … oci-archive:`` and ``podman save --format oci-archive`` write it. Manifests and blobs travel as
  they are, so digests are kept.
* A **docker-archive** is what ``docker save`` writes: ``manifest.json`` (``Config``, ``RepoTags``, ``Layers`` per
  image), the config JSON and one tar per layer. Read, an image becomes an OCI manifest over the archive's own
  bytes: an uncompressed layer keeps its bytes (``…layer.v1.tar``, digest = its diff_id), a gzip layer stays
  compressed (``…tar+gzip``; its digest and diff_id are computed when the image is resolved). Written, layers are
  decompressed and stored as ``<diff_id>.tar`` with ``<config digest>.json``, as skopeo writes it and docker loads it.

Sources are read in place (:class:`~dockyard.workflows.safetar.TarIndex`: bounded, nothing extracted) and every
blob is verified against its digest as it streams. Destinations are written to a temporary file beside the target
and renamed over it only when the whole copy succeeded (use them as context managers); a failure leaves nothing.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from typing_extensions import Self

from ..errors import DigestValidationError, ResourceNotFoundError
from ..layout import (
    LAYOUT_VERSION,
    REF_NAME_ANNOTATION,
    check_layout_version,
    find_reference,
    fsync_dir,
    index_entries,
    parse_index_document,
    reference_names,
)
from ..oci import mediatypes as mt
from ..oci.digest import Digest, Hasher, compute_digest
from ..oci.manifest import Descriptor, parse_manifest
from ..oci.reference import Reference
from .safetar import MAX_MEMBERS, ArchiveError, TarIndex, compression_of, member_name
from .stores import Advance, LayoutStore, ManifestBlob

_CHUNK = 1024 * 1024
#: Layer media types a docker-archive can hold (after decompression).
_TAR_LAYER_TYPES = frozenset({mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER})


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an archive may make dockyard read.

    ``max_members``: tar members; ``max_json``: bytes of ``manifest.json``, ``index.json``, ``repositories`` and
    image configs; ``max_layer_size``: uncompressed bytes of one layer (a gzip bomb stops there).
    """

    max_members: int = MAX_MEMBERS
    max_json: int = mt.MAX_MANIFEST_SIZE
    max_layer_size: int = 256 * 1024**3


class _VerifyingReader(io.RawIOBase):
    """A stream over ``source`` that raises :class:`DigestValidationError` at its end unless the bytes hash to
    ``digest`` (and number ``size``, when given)."""

    def __init__(self, source: IO[bytes], digest: str, size: int | None, where: str) -> None:
        super().__init__()
        self._source = source
        self._digest = digest
        self._size = size
        self._where = where
        self._hasher = Hasher(Digest.parse(digest).algorithm)
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        data = self._source.read(len(target))
        if data:
            self._hasher.update(data)
            # Checked with the last byte, not on a further read: a reader that stops at the size it expects
            # (an upload of a known size) still gets the error before it hands the bytes on.
            if self._size is not None and self._hasher.size >= self._size:
                self._check()
            target[: len(data)] = data
            return len(data)
        self._check()
        return 0

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._hasher.digest != self._digest:
            raise DigestValidationError(
                f"{self._where} hashes to {self._hasher.digest}, not {self._digest} ({self._hasher.size} bytes)"
            )
        if self._size is not None and self._hasher.size != self._size:
            raise DigestValidationError(f"{self._where} is {self._hasher.size} bytes, not {self._size}")

    def close(self) -> None:
        self._source.close()
        super().close()


def _expected_size(stored: int, declared: int | None, member: str) -> int:
    """The size a blob must have: the archive's, which must agree with the descriptor's when one is given."""
    if declared is not None and declared != stored:
        raise ArchiveError(f"{member} holds {stored} bytes, but its descriptor says {declared}")
    return stored


def _verified(source: IO[bytes], digest: str, size: int | None, where: str) -> IO[bytes]:
    return io.BufferedReader(_VerifyingReader(source, digest, size, where), _CHUNK)


def _blob_member(digest: str) -> str:
    parsed = Digest.parse(digest)
    return f"blobs/{parsed.algorithm}/{parsed.hex}"


def _read_only(what: str) -> ArchiveError:
    return ArchiveError(f"{what} is a source here: it cannot be written to")


# -- reading an oci-archive ---------------------------------------------------------------------------------------


class ArchivedLayout:
    """The OCI image layout inside an oci-archive, read in place (what :class:`LayoutStore` needs of a layout)."""

    def __init__(self, path: str | os.PathLike[str], limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        self.path = Path(path)
        self.tar = TarIndex(self.path, max_members=self.limits.max_members)
        where = f"{self.path}: oci-layout"
        if not self.tar.has("oci-layout"):
            raise ArchiveError(f"{self.path} is not an oci-archive (no oci-layout file)")
        check_layout_version(self.tar.read_small("oci-layout", self.limits.max_json), where)
        if not self.tar.has("index.json"):
            raise ArchiveError(f"{self.path} is not an oci-archive (no index.json)")
        document = parse_index_document(self.tar.read_small("index.json", self.limits.max_json),
                                        f"{self.path}: index.json")
        self._entries = index_entries(document)

    def index(self) -> list[Descriptor]:
        return list(self._entries)

    def tags(self) -> list[str]:
        return reference_names(self._entries)

    def resolve(self, reference: str) -> Descriptor:
        return find_reference(self._entries, reference, f"{self.path}")

    def has_blob(self, digest: str) -> bool:
        return self.tar.has(_blob_member(digest))

    def open_blob(self, digest: str, size: int | None = None) -> IO[bytes]:
        """Blob ``digest`` as a stream that is verified against the digest (and ``size``) as it is read."""
        name = _blob_member(digest)
        if not self.tar.has(name):
            raise ResourceNotFoundError(f"blob {digest} is not in {self.path}")
        return _verified(self.tar.open(name), digest, _expected_size(self.tar.member(name).size, size, name),
                         f"{self.path}: {name}")

    def read_manifest(self, digest: str) -> bytes:
        """The exact bytes of manifest ``digest``, bounded by the manifest size limit and verified."""
        name = _blob_member(digest)
        if not self.tar.has(name):
            raise ResourceNotFoundError(f"manifest {digest} is not in {self.path}")
        body = self.tar.read_small(name, mt.MAX_MANIFEST_SIZE)
        actual = compute_digest(body, Digest.parse(digest).algorithm)
        if actual != digest:
            raise DigestValidationError(f"{self.path}: {name} hashes to {actual}, not {digest}")
        return body

    def default_reference(self) -> str:
        """The reference of the only image listed; :class:`ArchiveError` when there are several or none."""
        if len(self._entries) == 1:
            entry = self._entries[0]
            return entry.annotations.get(REF_NAME_ANNOTATION) or entry.digest
        names = ", ".join(self.tags()) or "none tagged"
        raise ArchiveError(f"{self.path} lists {len(self._entries)} images ({names}): name one as "
                           f"oci-archive:FILE:TAG")


class OCIArchiveSource(LayoutStore):
    """An oci-archive read as a copy source."""

    # ArchivedLayout reads in place what LayoutStore reads of an OCILayout; it is no subclass (it writes nothing).
    layout: ArchivedLayout  # type: ignore[assignment]

    def __init__(self, path: str | os.PathLike[str], limits: ArchiveLimits | None = None) -> None:
        super().__init__(ArchivedLayout(path, limits))  # type: ignore[arg-type]

    def describe(self, reference: str | None = None) -> str:
        return f"oci-archive:{self.layout.path}" + (f":{reference}" if reference else "")

    def default_reference(self) -> str:
        return self.layout.default_reference()

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        raise _read_only(self.describe())

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        raise _read_only(self.describe())

    def download_from(self, source: Any, descriptor: Descriptor, advance: Advance) -> None:
        raise _read_only(self.describe())


# -- reading a docker-archive -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArchiveImage:
    """One ``manifest.json`` entry."""

    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]


def _parse_docker_manifest(payload: bytes, where: str) -> list[_ArchiveImage]:
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise ArchiveError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ArchiveError(f"{where}: expected a non-empty list of images")
    images = []
    for i, item in enumerate(data):
        config = item.get("Config") if isinstance(item, dict) else None
        tags = (item.get("RepoTags") or []) if isinstance(item, dict) else None
        layers = (item.get("Layers") or []) if isinstance(item, dict) else None
        if not isinstance(config, str) or not isinstance(tags, list) or not isinstance(layers, list) or not all(
            isinstance(x, str) for x in [*tags, *layers]
        ):
            raise ArchiveError(f"{where}: entry {i} needs Config (a path), RepoTags and Layers (lists of strings)")
        images.append(_ArchiveImage(member_name(config), tuple(tags), tuple(member_name(x) for x in layers)))
    return images


def _normalized_repo_tag(text: str) -> str:
    """``name[:tag]`` as ``name:tag`` (``latest`` when untagged); :class:`ValueError` for a malformed name."""
    ref = Reference.parse(text)
    if ref.digest:
        raise ValueError(f"{text!r}: a docker-archive names images by name:tag, not by digest")
    return str(Reference(ref.registry, ref.repository, ref.tag or "latest"))


def _gunzip(chunks: Iterator[bytes], limit: int, where: str) -> Iterator[bytes]:
    """The decompressed bytes of gzip ``chunks`` (several members allowed), refusing more than ``limit`` bytes."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    produced = 0
    pending = False  # the current gzip member has started and not ended
    for chunk in chunks:
        data = chunk
        while data:
            pending = True
            try:
                out = decompressor.decompress(data, _CHUNK)
            except zlib.error as exc:
                raise ArchiveError(f"{where}: corrupt gzip data: {exc}") from None
            produced += len(out)
            if produced > limit:
                raise ArchiveError(f"{where}: decompresses to more than {limit} bytes")
            if out:
                yield out
            if decompressor.eof:
                pending = False
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
            else:
                data = decompressor.unconsumed_tail
    if pending:
        raise ArchiveError(f"{where}: truncated gzip data")


def _read_chunks(stream: IO[bytes], advance: Advance | None = None) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        if advance is not None:
            advance(len(chunk))
        yield chunk


class DockerArchiveSource:
    """A docker-archive (``docker save``) read as a copy source; each image is offered as an OCI manifest."""

    def __init__(self, path: str | os.PathLike[str], limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        self.path = Path(path)
        self.tar = TarIndex(self.path, max_members=self.limits.max_members)
        if not self.tar.has("manifest.json"):
            raise ArchiveError(f"{self.path} is not a docker-archive (no manifest.json)")
        self.images = _parse_docker_manifest(self.tar.read_small("manifest.json", self.limits.max_json),
                                             f"{self.path}: manifest.json")
        self._blobs: dict[str, tuple[str, int]] = {}
        self._manifests: dict[str, ManifestBlob] = {}
        self._lock = threading.Lock()

    def describe(self, reference: str | None = None) -> str:
        return f"docker-archive:{self.path}" + (f":{reference}" if reference else "")

    def default_reference(self) -> str:
        """``@0`` when the archive holds one image; :class:`ArchiveError` when it holds several."""
        if len(self.images) == 1:
            return "@0"
        names = ", ".join(t for image in self.images for t in image.repo_tags) or "none tagged"
        raise ArchiveError(f"{self.path} holds {len(self.images)} images ({names}): name one as "
                           f"docker-archive:FILE:NAME:TAG or docker-archive:FILE:@INDEX")

    def _select(self, reference: str) -> _ArchiveImage:
        if reference.startswith("@") and reference[1:].isdigit():
            number = int(reference[1:])
            if number >= len(self.images):
                raise ResourceNotFoundError(f"{self.path} holds {len(self.images)} image(s); there is no {reference}")
            return self.images[number]
        wanted = _normalized_repo_tag(reference)
        for image in self.images:
            for tag in image.repo_tags:
                try:
                    if _normalized_repo_tag(tag) == wanted:
                        return image
                except ValueError:
                    continue
        raise ResourceNotFoundError(f"{reference!r} is not in the docker-archive {self.path}")

    def resolve(self, reference: str) -> ManifestBlob:
        image = self._select(reference)
        config = self.tar.read_small(image.config, self.limits.max_json)
        try:
            document = json.loads(config)
            diff_ids = document["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ArchiveError(f"{self.path}: {image.config} is not an image config with rootfs.diff_ids") from None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(image.layers):
            raise ArchiveError(f"{self.path}: {image.config} lists {len(diff_ids)} diff_ids for "
                               f"{len(image.layers)} layers")
        config_digest = compute_digest(config)
        layers = [self._layer(name, diff_id) for name, diff_id in zip(image.layers, diff_ids, strict=True)]
        document = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": Descriptor(mt.OCI_CONFIG, config_digest, len(config)).to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        manifest = ManifestBlob(body, mt.OCI_MANIFEST, compute_digest(body))
        with self._lock:
            self._blobs[config_digest] = (image.config, len(config))
            self._manifests[manifest.digest] = manifest
        return manifest

    def _layer(self, name: str, diff_id: Any) -> Descriptor:
        """The descriptor of layer file ``name``: its own bytes, verified against ``diff_id`` (decompressed)."""
        if not isinstance(diff_id, str):
            raise ArchiveError(f"{self.path}: a diff_id of {name} is not a string")
        Digest.parse(diff_id)
        size = self.tar.member(name).size
        with self.tar.open(name) as stream:
            compression = compression_of(stream.read(4))
        if compression is None:
            descriptor = Descriptor(mt.OCI_LAYER, diff_id, size)
        elif compression == "gzip":
            digest = self._gzip_layer_digest(name, diff_id)
            descriptor = Descriptor(mt.OCI_LAYER_GZIP, digest, size)
        else:
            raise ArchiveError(f"{self.path}: {name} is zstd-compressed, which dockyard cannot verify")
        with self._lock:
            self._blobs[descriptor.digest] = (name, size)
        return descriptor

    def _gzip_layer_digest(self, name: str, diff_id: str) -> str:
        """One pass over a compressed layer: its digest, and its diff_id checked against the config's."""
        compressed = Hasher()
        uncompressed = Hasher(Digest.parse(diff_id).algorithm)
        where = f"{self.path}: {name}"

        def counted(stream: IO[bytes]) -> Iterator[bytes]:
            for chunk in _read_chunks(stream):
                compressed.update(chunk)
                yield chunk

        with self.tar.open(name) as stream:
            for data in _gunzip(counted(stream), self.limits.max_layer_size, where):
                uncompressed.update(data)
        if uncompressed.digest != diff_id:
            raise DigestValidationError(f"{where} decompresses to {uncompressed.digest}, not the config's "
                                        f"diff_id {diff_id}")
        return compressed.digest

    def fetch_manifest(self, digest: str) -> ManifestBlob:
        with self._lock:
            found = self._manifests.get(digest)
        if found is None:
            raise ResourceNotFoundError(f"manifest {digest} is not in the docker-archive {self.path}")
        return found

    def has_blob(self, digest: str) -> bool:
        with self._lock:
            return digest in self._blobs

    def open_blob(self, digest: str, size: int | None = None) -> IO[bytes]:
        with self._lock:
            found = self._blobs.get(digest)
        if found is None:
            raise ResourceNotFoundError(f"blob {digest} is not in the docker-archive {self.path}")
        name, stored = found
        return _verified(self.tar.open(name), digest, _expected_size(stored, size, name), f"{self.path}: {name}")

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        raise _read_only(self.describe())

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        raise _read_only(self.describe())

    def tags(self) -> list[str]:
        return []

    def referrers(self, digest: str) -> list[Descriptor]:
        return []


# -- writing ------------------------------------------------------------------------------------------------------


class _TarWriter:
    """A tar file written to a temporary file beside ``path`` and renamed onto it by :meth:`commit`.

    Members may be streamed without knowing their size: the header is written first and rewritten (same name
    length, same header length: GNU format) once the size is known.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.temp = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self.lock = threading.RLock()
        #: Set when a member failed half-way: the temporary file can then only be discarded.
        self.broken = False

    @staticmethod
    def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        info.type = kind
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        info.mtime = 0
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")

    def _pad(self, size: int) -> None:
        remainder = size % tarfile.BLOCKSIZE
        if remainder:
            self._file.write(b"\0" * (tarfile.BLOCKSIZE - remainder))

    def add_directory(self, name: str) -> None:
        with self.lock:
            self._file.write(self._header(name, 0, tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        with self.lock:
            self._file.write(self._header(name, len(data)))
            self._file.write(data)
            self._pad(len(data))

    def begin(self) -> int:
        """Where the next member starts (for :meth:`rewind`)."""
        return self._file.tell()

    def add_stream(self, name: str, chunks: Iterator[bytes], size: int | None) -> int:
        """Stream a member; ``size`` (when known) is checked. Returns the number of bytes written."""
        with self.lock:
            start = self._file.tell()
            header = self._header(name, size or 0)
            if size is None and len(header) != tarfile.BLOCKSIZE:
                raise ArchiveError(f"cannot stream {name} of unknown size: its header is not one block")
            self._file.write(header)
            written = 0
            try:
                for chunk in chunks:
                    written += len(chunk)
                    if size is not None and written > size:
                        raise DigestValidationError(f"{name}: more than the {size} bytes its descriptor promises")
                    self._file.write(chunk)
                if size is not None and written != size:
                    raise DigestValidationError(f"{name}: {written} bytes, not the {size} its descriptor promises")
            except BaseException:
                self.broken = True
                raise
            self._pad(written)
            if size is None:
                self.rename(start, name, written)
            return written

    def rename(self, start: int, name: str, size: int) -> None:
        """Rewrite the one-block header at ``start`` with ``name`` and ``size`` (a name under 100 characters,
        whose header, in GNU format, is one block whatever the size)."""
        with self.lock:
            header = self._header(name, size)
            if len(header) != tarfile.BLOCKSIZE:
                raise ArchiveError(f"cannot rewrite the tar header of {name}: it is not one block")
            end = self._file.tell()
            self._file.seek(start)
            self._file.write(header)
            self._file.seek(end)

    def rewind(self, start: int) -> None:
        """Drop everything written from ``start`` on (a member that turned out to be a duplicate)."""
        with self.lock:
            self._file.seek(start)
            self._file.truncate()

    def commit(self) -> None:
        """Finish the archive and rename it onto ``path``."""
        with self.lock:
            if self.broken:
                raise ArchiveError(f"{self.path}: a blob failed half-way; the archive cannot be completed")
            self._file.write(b"\0" * (2 * tarfile.BLOCKSIZE))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self.temp, 0o644)
            os.replace(self.temp, self.path)
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Close and remove the temporary file (nothing appears at ``path``)."""
        with self.lock:
            if not self._file.closed:
                self._file.close()
            self.temp.unlink(missing_ok=True)


class _ArchiveWriter:
    """What both archive destinations share: the temporary tar, commit on success, discard on failure."""

    #: A tar is one stream: :mod:`dockyard.workflows.copy` hands this store one blob at a time.
    serial_writes = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._tar = _TarWriter(self.path)
        self._done = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def _finish(self) -> None:
        """Write the archive's index files (subclasses)."""

    def commit(self) -> None:
        """Write the index files and publish the archive at its path."""
        if self._done:
            return
        try:
            self._finish()
            self._tar.commit()
        except BaseException:
            self._tar.discard()
            raise
        finally:
            self._done = True

    def discard(self) -> None:
        """Drop everything written; the path is left as it was."""
        if not self._done:
            self._tar.discard()
            self._done = True

    def resolve(self, reference: str) -> ManifestBlob:
        raise ArchiveError(f"{self.path} is being written: it cannot be read from")

    fetch_manifest = resolve

    def open_blob(self, digest: str, size: int | None = None) -> IO[bytes]:
        raise ArchiveError(f"{self.path} is being written: it cannot be read from")

    def referrers(self, digest: str) -> list[Descriptor]:
        return []


def _verified_chunks(stream: IO[bytes], descriptor: Descriptor, advance: Advance, where: str) -> Iterator[bytes]:
    """``stream`` in chunks, hashed; raises :class:`DigestValidationError` at the end on a mismatch."""
    hasher = Hasher(Digest.parse(descriptor.digest).algorithm)
    for chunk in _read_chunks(stream, advance):
        hasher.update(chunk)
        yield chunk
    if hasher.digest != descriptor.digest:
        raise DigestValidationError(f"{where} hashes to {hasher.digest}, not {descriptor.digest}")


class OCIArchiveWriter(_ArchiveWriter):
    """An oci-archive written as a copy destination: blobs as they come, ``index.json`` at commit."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._blobs: set[str] = set()
        self._entries: list[Descriptor] = []
        self._tar.add_directory("blobs/")

    def describe(self, reference: str | None = None) -> str:
        return f"oci-archive:{self.path}" + (f":{reference}" if reference else "")

    def has_blob(self, digest: str) -> bool:
        with self._tar.lock:
            return digest in self._blobs

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        name = _blob_member(descriptor.digest)
        with self._tar.lock:
            if descriptor.digest in self._blobs:
                return
            self._tar.add_stream(name, _verified_chunks(stream, descriptor, advance, name), descriptor.size)
            self._blobs.add(descriptor.digest)

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        parsed = parse_manifest(manifest.body, manifest.media_type)
        with self._tar.lock:
            if manifest.digest not in self._blobs:
                self._tar.add_bytes(_blob_member(manifest.digest), manifest.body)
                self._blobs.add(manifest.digest)
            if not root:
                return
            annotations = {REF_NAME_ANNOTATION: tag} if tag else {}
            entry = Descriptor(parsed.media_type, manifest.digest, len(manifest.body),
                               artifact_type=parsed.artifact_type, annotations=annotations)
            self._entries = [e for e in self._entries if not (
                (tag and e.annotations.get(REF_NAME_ANNOTATION) == tag)
                or (not tag and not e.annotations and e.digest == manifest.digest))]
            self._entries.append(entry)

    def tags(self) -> list[str]:
        return reference_names(self._entries)

    def _finish(self) -> None:
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [e.to_json() for e in self._entries]}
        self._tar.add_bytes("oci-layout", json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
        self._tar.add_bytes("index.json", json.dumps(index, separators=(",", ":")).encode())


class DockerArchiveWriter(_ArchiveWriter):
    """A docker-archive written as a copy destination (the format skopeo writes and ``docker load`` reads).

    Holds images only: layers are decompressed to ``<diff_id>.tar`` (checked against the config's diff_ids),
    configs become ``<digest>.json``, and each image tagged ``NAME:TAG`` is listed in ``manifest.json``.
    """

    #: :func:`dockyard.workflows.copy.copy_image` hands this store one image, never an index.
    single_image = True

    def __init__(self, path: str | os.PathLike[str], limits: ArchiveLimits | None = None) -> None:
        super().__init__(path)
        self.limits = limits or ArchiveLimits()
        self._layers: dict[str, tuple[str, str]] = {}  # blob digest -> (member, diff_id)
        self._diff_ids: set[str] = set()
        self._configs: dict[str, bytes] = {}
        self._images: list[dict[str, Any]] = []

    def describe(self, reference: str | None = None) -> str:
        return f"docker-archive:{self.path}" + (f":{reference}" if reference else "")

    def has_blob(self, digest: str) -> bool:
        with self._tar.lock:
            return digest in self._layers or digest in self._configs

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        if descriptor.media_type in mt.CONFIG_TYPES:
            self._write_config(stream, descriptor, advance)
        elif descriptor.media_type in _TAR_LAYER_TYPES:
            self._write_layer(stream, descriptor, advance)
        else:
            raise ArchiveError(f"a docker-archive holds container images: it cannot hold a blob of media type "
                               f"{descriptor.media_type}")

    def _write_config(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        if descriptor.size > self.limits.max_json:
            raise ArchiveError(f"config {descriptor.digest} is {descriptor.size} bytes; the limit is "
                               f"{self.limits.max_json}")
        body = b"".join(_verified_chunks(stream, descriptor, advance, f"config {descriptor.digest}"))
        with self._tar.lock:
            if descriptor.digest not in self._configs:
                self._tar.add_bytes(f"{Digest.parse(descriptor.digest).hex}.json", body)
                self._configs[descriptor.digest] = body

    def _write_layer(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        where = f"layer {descriptor.digest}"
        chunks = _verified_chunks(stream, descriptor, advance, where)
        first = next(chunks, b"")
        compression = compression_of(first)
        if compression == "zstd":
            raise ArchiveError(f"{where} is zstd-compressed: a docker-archive needs it decompressed, which dockyard "
                               "cannot do")
        rest = _prepend(first, chunks)
        data = _gunzip(rest, self.limits.max_layer_size, where) if compression == "gzip" else rest
        diff = Hasher()

        def hashed() -> Iterator[bytes]:
            for chunk in data:
                diff.update(chunk)
                yield chunk

        with self._tar.lock:
            start = self._tar.begin()
            placeholder = f"{'0' * 64}.tar"
            self._tar.add_stream(placeholder, hashed(), None)
            diff_id = diff.digest
            if diff_id in self._diff_ids:
                self._tar.rewind(start)
            else:
                self._tar.rename(start, f"{Digest.parse(diff_id).hex}.tar", diff.size)
                self._diff_ids.add(diff_id)
            self._layers[descriptor.digest] = (f"{Digest.parse(diff_id).hex}.tar", diff_id)

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        parsed = parse_manifest(manifest.body, manifest.media_type)
        if parsed.is_index or parsed.media_type not in mt.IMAGE_TYPES or parsed.config is None:
            raise ArchiveError(f"a docker-archive holds container images; {manifest.digest} is a "
                               f"{parsed.media_type}")
        with self._tar.lock:
            config = self._configs.get(parsed.config.digest)
            if config is None:
                raise ArchiveError(f"a docker-archive needs an image config; {manifest.digest} has a "
                                   f"{parsed.config.media_type}")
            layers = []
            for layer in parsed.layers:
                found = self._layers.get(layer.digest)
                if found is None:
                    raise ArchiveError(f"layer {layer.digest} ({layer.media_type}) cannot be written to a "
                                       "docker-archive")
                layers.append(found)
        try:
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ArchiveError(f"config {parsed.config.digest} has no rootfs.diff_ids") from None
        if diff_ids != [diff_id for _, diff_id in layers]:
            raise DigestValidationError(f"the layers of {manifest.digest} do not match its config's rootfs.diff_ids")
        entry = {
            "Config": f"{Digest.parse(parsed.config.digest).hex}.json",
            "RepoTags": [tag] if tag else [],
            "Layers": [name for name, _ in layers],
        }
        with self._tar.lock:
            if tag:
                for image in self._images:
                    image["RepoTags"] = [t for t in image["RepoTags"] if t != tag]
            self._images.append(entry)

    def tags(self) -> list[str]:
        return [t for image in self._images for t in image["RepoTags"]]

    def _finish(self) -> None:
        if not self._images:
            raise ArchiveError(f"nothing to write to {self.path}")
        self._tar.add_bytes("manifest.json", json.dumps(self._images, separators=(",", ":")).encode())


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def docker_archive_tag(text: str) -> str:
    """A docker-archive image name as written in ``RepoTags``: ``NAME:TAG`` (``latest`` when untagged).

    Raises :class:`ValueError` for a malformed name or a digest."""
    return _normalized_repo_tag(text)


__all__ = [
    "ArchiveError",
    "ArchiveLimits",
    "ArchivedLayout",
    "DockerArchiveSource",
    "DockerArchiveWriter",
    "OCIArchiveSource",
    "OCIArchiveWriter",
    "docker_archive_tag",
]
