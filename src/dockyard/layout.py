"""OCI image layout directories (image-spec "image-layout"): ``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``.

Pure filesystem, no network. This is what ``skopeo copy … oci:DIR:tag`` and ``oras … --oci-layout`` read and write,
and what ``dockyard copy oci:DIR`` uses::

    layout = OCILayout("out").create()
    digest, size = layout.write_blob(b"hello")
    desc = layout.write_manifest(manifest_bytes, tag="v1")
    assert layout.resolve("v1") == desc

Blobs are written to a temporary file in the layout, hashed while being written, fsynced, checked against the
expected digest and only then renamed into place, so a blob file always holds the bytes its name promises.
``index.json`` is replaced atomically in the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import DigestValidationError, DockyardError
from .oci import mediatypes as mt
from .oci.digest import DEFAULT_ALGORITHM, Digest, Hasher, compute_digest
from .oci.manifest import Descriptor, parse_manifest

#: The annotation that names an ``index.json`` entry (the ``tag`` of ``oci:DIR:tag``).
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
#: The only layout version the image-spec defines.
LAYOUT_VERSION = "1.0.0"

_CHUNK = 1024 * 1024

#: What :meth:`OCILayout.write_blob` accepts: bytes, a binary file object, or an iterable of byte chunks.
BlobSource = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]


class LayoutError(DockyardError):
    """A directory that is not a usable OCI image layout, or an operation the layout cannot do."""


class BlobNotFoundError(LayoutError, LookupError):
    """The layout holds no blob with that digest."""


class ReferenceNotFoundError(LayoutError, LookupError):
    """No ``index.json`` entry carries that reference name (tag) or digest."""


class OCILayout:
    """An OCI image layout directory.

    ``OCILayout(path)`` does no I/O. Call :meth:`create` to make (or reuse) a layout at ``path``, or use
    :meth:`open` to require an existing one. Methods are safe to call from several threads of one process;
    ``index.json`` updates are serialized by an in-process lock and published by atomic rename.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._index_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OCILayout({str(self.path)!r})"

    # -- opening ------------------------------------------------------------------------------------------------

    @property
    def layout_file(self) -> Path:
        """The ``oci-layout`` marker file."""
        return self.path / "oci-layout"

    @property
    def index_file(self) -> Path:
        """The ``index.json`` file."""
        return self.path / "index.json"

    def exists(self) -> bool:
        """True when ``path`` already holds an ``oci-layout`` file."""
        return self.layout_file.is_file()

    def create(self) -> OCILayout:
        """Make ``path`` an OCI layout (directories, ``oci-layout``, an empty ``index.json``); keep what exists.

        Returns ``self``. Raises :class:`LayoutError` when ``path`` exists and is a layout of another version.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "blobs").mkdir(exist_ok=True)
        if self.exists():
            self._check_version()
        else:
            self._write_json_atomic(self.layout_file, {"imageLayoutVersion": LAYOUT_VERSION})
        if not self.index_file.exists():
            self._write_json_atomic(self.index_file, _empty_index())
        return self

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> OCILayout:
        """Open an existing layout; raise :class:`LayoutError` when ``path`` is not one."""
        layout = cls(path)
        if not layout.exists():
            raise LayoutError(f"{layout.path} is not an OCI image layout (no oci-layout file)")
        layout._check_version()
        return layout

    def _check_version(self) -> None:
        try:
            payload = self.layout_file.read_bytes()
        except OSError as exc:
            raise LayoutError(f"{self.layout_file}: unreadable oci-layout file: {exc}") from None
        check_layout_version(payload, str(self.layout_file))

    # -- blobs --------------------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (``blobs/<alg>/<hex>``); the digest is validated first.

        Raises :class:`dockyard.oci.InvalidDigestError` for a malformed or unsupported digest, so no caller can
        escape the layout directory with a crafted string.
        """
        parsed = Digest.parse(digest)
        return self.path / "blobs" / parsed.algorithm / parsed.hex

    def has_blob(self, digest: str) -> bool:
        """True when the layout holds blob ``digest``."""
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        """The size in bytes of blob ``digest``; :class:`BlobNotFoundError` when absent."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found in {self.path}") from None

    def open_blob(self, digest: str) -> BinaryIO:
        """Open blob ``digest`` for reading (a binary file; close it); :class:`BlobNotFoundError` when absent."""
        try:
            return self.blob_path(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found in {self.path}") from None

    def read_blob(self, digest: str) -> bytes:
        """The whole content of blob ``digest`` (for small blobs such as configs)."""
        with self.open_blob(digest) as fh:
            return fh.read()

    def iter_blobs(self) -> Iterator[str]:
        """The digest of every blob file present, in no particular order (temporary files excluded)."""
        blobs = self.path / "blobs"
        if not blobs.is_dir():
            return
        for alg_dir in sorted(blobs.iterdir()):
            if not alg_dir.is_dir():
                continue
            for entry in sorted(alg_dir.iterdir()):
                candidate = f"{alg_dir.name}:{entry.name}"
                with contextlib.suppress(ValueError):
                    Digest.parse(candidate)
                    yield candidate

    def write_blob(
        self,
        data: BlobSource,
        expected_digest: str | None = None,
        *,
        algorithm: str = DEFAULT_ALGORITHM,
    ) -> tuple[str, int]:
        """Store a blob and return ``(digest, size)``.

        ``data`` is bytes, a binary file object (read in 1 MiB pieces) or an iterable of byte chunks. The bytes go
        to a temporary file beside the blobs, are hashed while written and fsynced; when ``expected_digest`` is
        given and differs from what was written, the temporary file is removed and
        :class:`dockyard.errors.DigestValidationError` is raised. Otherwise the file is renamed into place. With
        ``expected_digest`` its algorithm is used (``algorithm`` otherwise). When ``expected_digest`` names a blob
        the layout already holds, ``data`` is not read.
        """
        if expected_digest is not None:
            algorithm = Digest.parse(expected_digest).algorithm
            if self.has_blob(expected_digest):
                return expected_digest, self.blob_size(expected_digest)
        hasher = Hasher(algorithm)
        target_dir = self.path / "blobs" / algorithm
        target_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(data):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.digest
            if expected_digest is not None and digest != expected_digest:
                raise DigestValidationError(
                    f"blob content hashes to {digest}, not the expected {expected_digest} ({hasher.size} bytes)"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.blob_path(digest))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(target_dir)
        return digest, hasher.size

    # -- manifests and index.json -------------------------------------------------------------------------------

    def read_manifest(self, digest: str) -> bytes:
        """The exact bytes of manifest blob ``digest``, verified against the digest and the 4 MiB manifest limit."""
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"manifest {digest} not found in {self.path}") from None
        if size > mt.MAX_MANIFEST_SIZE:
            raise LayoutError(f"manifest {digest} is {size} bytes; the limit is {mt.MAX_MANIFEST_SIZE}")
        body = path.read_bytes()
        actual = compute_digest(body, Digest.parse(digest).algorithm)
        if actual != digest:
            raise DigestValidationError(f"blob file {path} hashes to {actual}, not {digest}")
        return body

    def index_document(self) -> dict[str, Any]:
        """The parsed ``index.json`` (an OCI image index object)."""
        try:
            payload = self.index_file.read_bytes()
        except FileNotFoundError:
            raise LayoutError(f"{self.path} has no index.json") from None
        return parse_index_document(payload, str(self.index_file))

    def index(self) -> list[Descriptor]:
        """The descriptors listed in ``index.json``, in file order."""
        return index_entries(self.index_document())

    def tags(self) -> list[str]:
        """The reference names (``org.opencontainers.image.ref.name``) in ``index.json``, in file order."""
        return reference_names(self.index())

    def resolve(self, reference: str) -> Descriptor:
        """The ``index.json`` entry named ``reference`` (its ref-name annotation), or listing that digest.

        Raises :class:`ReferenceNotFoundError` when no entry matches.
        """
        return find_reference(self.index(), reference, str(self.index_file))

    def add_manifest(self, descriptor: Descriptor, tag: str | None = None) -> Descriptor:
        """List ``descriptor`` in ``index.json`` (under reference name ``tag`` when given); return the entry.

        The manifest blob must already be in the layout (:class:`BlobNotFoundError` otherwise). An entry that
        carries the same reference name is replaced; without a tag, an untagged entry with the same digest is not
        added twice. ``index.json`` is rewritten to a temporary file and renamed over the old one.
        """
        if not self.has_blob(descriptor.digest):
            raise BlobNotFoundError(f"manifest {descriptor.digest} is not in {self.path}; write the blob first")
        if tag is not None:
            if not tag:
                raise ValueError("a reference name must not be empty")
            descriptor = replace(descriptor, annotations={**descriptor.annotations, REF_NAME_ANNOTATION: tag})
        name = descriptor.annotations.get(REF_NAME_ANNOTATION)
        with self._index_lock:
            document = self.index_document() if self.index_file.exists() else _empty_index()
            kept = []
            for entry in document.get("manifests") or []:
                if not isinstance(entry, dict):
                    continue
                entry_name = (entry.get("annotations") or {}).get(REF_NAME_ANNOTATION)
                if name is not None and entry_name == name:
                    continue
                if name is None and entry_name is None and entry.get("digest") == descriptor.digest:
                    continue
                kept.append(entry)
            kept.append(descriptor.to_json())
            document["manifests"] = kept
            document.setdefault("schemaVersion", 2)
            document.setdefault("mediaType", mt.OCI_INDEX)
            self._write_json_atomic(self.index_file, document)
        return descriptor

    def remove_reference(self, reference: str) -> None:
        """Drop the ``index.json`` entry named ``reference``; :class:`ReferenceNotFoundError` when none is."""
        with self._index_lock:
            document = self.index_document()
            entries = document.get("manifests") or []
            kept = [
                e
                for e in entries
                if not (isinstance(e, dict) and (e.get("annotations") or {}).get(REF_NAME_ANNOTATION) == reference)
            ]
            if len(kept) == len(entries):
                raise ReferenceNotFoundError(f"{reference!r} not found in {self.index_file}")
            document["manifests"] = kept
            self._write_json_atomic(self.index_file, document)

    def write_manifest(
        self, body: bytes, media_type: str | None = None, tag: str | None = None, *, add_to_index: bool = True
    ) -> Descriptor:
        """Store manifest ``body`` (exact bytes) as a blob and, unless ``add_to_index`` is false, list it.

        The media type is ``media_type`` or the body's ``mediaType`` (validated with
        :func:`dockyard.oci.parse_manifest`). For an image or index with an ``artifactType`` the descriptor
        carries it too. Returns the descriptor (with the ref-name annotation when ``tag`` is given).
        """
        manifest = parse_manifest(body, media_type)
        digest, size = self.write_blob(body)
        descriptor = Descriptor(
            media_type=manifest.media_type, digest=digest, size=size, artifact_type=manifest.artifact_type
        )
        if add_to_index:
            return self.add_manifest(descriptor, tag)
        return descriptor

    # -- helpers ------------------------------------------------------------------------------------------------

    def _write_json_atomic(self, target: Path, document: dict[str, Any]) -> None:
        payload = json.dumps(document, separators=(",", ":")).encode()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)


def check_layout_version(payload: bytes, where: str) -> None:
    """Check ``oci-layout`` file bytes name the layout version dockyard reads (:class:`LayoutError` otherwise)."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise LayoutError(f"{where}: unreadable oci-layout file: {exc}") from None
    version = data.get("imageLayoutVersion") if isinstance(data, dict) else None
    if version != LAYOUT_VERSION:
        raise LayoutError(f"{where}: unsupported imageLayoutVersion {version!r}")


def parse_index_document(payload: bytes, where: str) -> dict[str, Any]:
    """``index.json`` bytes parsed and checked to be an image index object (:class:`LayoutError` otherwise)."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise LayoutError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
        raise LayoutError(f"{where}: not an image index")
    return data


def index_entries(document: dict[str, Any]) -> list[Descriptor]:
    """The descriptors an ``index.json`` document lists, in file order."""
    entries = document.get("manifests") or []
    return [Descriptor.from_json(entry, f"index.json manifests[{i}]") for i, entry in enumerate(entries)]


def reference_names(entries: Iterable[Descriptor]) -> list[str]:
    """The reference names (tags) of ``index.json`` entries, in order."""
    return [d.annotations[REF_NAME_ANNOTATION] for d in entries if REF_NAME_ANNOTATION in d.annotations]


def find_reference(entries: list[Descriptor], reference: str, where: str) -> Descriptor:
    """The entry named ``reference`` (its ref-name annotation), else the one listing that digest.

    Raises :class:`ReferenceNotFoundError` (naming ``where``) when no entry matches.
    """
    for desc in entries:
        if desc.annotations.get(REF_NAME_ANNOTATION) == reference:
            return desc
    if ":" in reference:
        for desc in entries:
            if desc.digest == reference:
                return desc
    raise ReferenceNotFoundError(f"{reference!r} not found in {where}")


def _empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}


def _chunks(data: BlobSource) -> Iterator[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
        return
    read = getattr(data, "read", None)
    if callable(read):
        while True:
            chunk = read(_CHUNK)
            if not chunk:
                return
            yield chunk
    else:
        for chunk in data:
            if chunk:
                yield bytes(chunk)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "REF_NAME_ANNOTATION",
    "BlobNotFoundError",
    "BlobSource",
    "LayoutError",
    "OCILayout",
    "ReferenceNotFoundError",
    "check_layout_version",
    "find_reference",
    "fsync_dir",
    "index_entries",
    "parse_index_document",
    "reference_names",
]
