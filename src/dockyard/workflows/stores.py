"""Where copies come from and go to: a repository on a registry, or an OCI image layout directory.

Both stores offer the same small interface, so :mod:`dockyard.workflows.copy` moves content between any two.
Transfer progress is reported by the destination as it accepts bytes: a registry through the SDK's
``upload_blob(progress=...)`` hook, a layout directory as its writer takes each chunk.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from ..errors import ResourceNotFoundError
from ..layout import OCILayout, ReferenceNotFoundError
from ..oci import hosts
from ..oci.manifest import Descriptor, parse_manifest

Advance = Callable[[int], None]


@dataclass(frozen=True)
class ManifestBlob:
    """A manifest's exact bytes with its media type and digest."""

    body: bytes
    media_type: str
    digest: str


class Store(Protocol):
    """The operations a copy needs from a source or a destination."""

    def describe(self, reference: str | None = None) -> str:
        """A human name: ``registry/repo:tag`` or ``oci:DIR:tag``."""

    def resolve(self, reference: str) -> ManifestBlob:
        """The manifest a tag or digest names."""

    def fetch_manifest(self, digest: str) -> ManifestBlob:
        """A manifest by digest."""

    def has_blob(self, digest: str) -> bool:
        """True when the store holds the blob."""

    def open_blob(self, digest: str, size: int | None = None) -> IO[bytes]:
        """A binary stream over a blob; ``size`` (the descriptor's) caps what a registry may send."""

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        """Store a blob from ``stream`` (verified against ``descriptor``); ``advance(n)`` as ``n`` more bytes
        are stored."""

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        """Store a manifest; ``root`` manifests are listed (layouts) and tagged when ``tag`` is given."""

    def tags(self) -> list[str]:
        """Every tag."""

    def referrers(self, digest: str) -> list[Descriptor]:
        """The manifests whose subject is ``digest``."""


class _ChunkReader(io.RawIOBase):
    """A read-only stream over an iterator of byte chunks (a registry download)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._source = chunks
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = bytes(next(self._chunks))
            except StopIteration:
                break
        data, self._buffer = self._buffer[: len(target)], self._buffer[len(target):]
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if callable(close):
            close()
        super().close()


def chunk_reader(chunks: Iterable[bytes]) -> IO[bytes]:
    """A buffered binary stream over an iterable of byte chunks."""
    return io.BufferedReader(_ChunkReader(chunks), buffer_size=1024 * 1024)


def _reported_chunks(stream: IO[bytes], advance: Advance, size: int = 1024 * 1024) -> Iterator[bytes]:
    """``stream`` in chunks of ``size``, each reported to ``advance`` as it is handed on."""
    while chunk := stream.read(size):
        yield chunk
        advance(len(chunk))


class RegistryStore:
    """A repository on a registry, through a :class:`dockyard.ContainerRegistryClient`.

    ``registry_key`` identifies the registry (its URL): two stores with the same key can mount blobs from one
    repository into another instead of copying them.
    """

    def __init__(self, client: Any, repository: str, registry_key: str) -> None:
        self.client = client
        self.repository = repository
        self.registry_key = registry_key

    def describe(self, reference: str | None = None) -> str:
        host = hosts.registry_host(self.registry_key)
        if reference is None:
            return f"{host}/{self.repository}"
        separator = "@" if ":" in reference else ":"
        return f"{host}/{self.repository}{separator}{reference}"

    def resolve(self, reference: str) -> ManifestBlob:
        result = self.client.get_manifest(self.repository, reference)
        return ManifestBlob(result.content, result.media_type, result.digest)

    def fetch_manifest(self, digest: str) -> ManifestBlob:
        return self.resolve(digest)

    def has_blob(self, digest: str) -> bool:
        return bool(self.client.blob_exists(self.repository, digest))

    def open_blob(self, digest: str, size: int | None = None) -> IO[bytes]:
        return chunk_reader(self.client.download_blob(self.repository, digest, size=size))

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        # The copier has just asked whether the blob is here (has_blob): no second HEAD.
        self.client.upload_blob(
            self.repository, stream, digest=descriptor.digest, size=descriptor.size, progress=advance,
            check_exists=False,
        )

    def sibling(self, repository: str) -> RegistryStore:
        """Another repository of the same registry, through the same client."""
        return RegistryStore(self.client, repository, self.registry_key)

    def manifest_digest(self, reference: str) -> str | None:
        """The digest of the manifest a tag or digest names (one ``HEAD``); ``None`` when there is none."""
        try:
            return str(self.client.get_manifest_descriptor(self.repository, reference).digest)
        except ResourceNotFoundError:
            return None

    def has_manifest(self, digest: str) -> bool:
        """True when the repository holds the manifest ``digest`` (one ``HEAD``)."""
        return self.manifest_digest(digest) is not None

    def mount_from(self, other: RegistryStore, digest: str) -> bool:
        """Cross-repository mount from ``other`` (same registry); True when the registry mounted it."""
        if other.registry_key != self.registry_key or other.repository == self.repository:
            return False
        return bool(self.client.mount_blob(self.repository, digest, other.repository))

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        self.client.set_manifest(self.repository, manifest.body, tag=tag if root else None,
                                 media_type=manifest.media_type)

    def tags(self) -> list[str]:
        return [t.name for t in self.client.list_tag_properties(self.repository)]

    def referrers(self, digest: str) -> list[Descriptor]:
        return list(self.client.list_referrers(self.repository, digest))


class LayoutStore:
    """An OCI image layout directory (``oci:DIR``)."""

    def __init__(self, layout: OCILayout) -> None:
        self.layout = layout

    def describe(self, reference: str | None = None) -> str:
        return f"oci:{self.layout.path}" + (f":{reference}" if reference else "")

    def resolve(self, reference: str) -> ManifestBlob:
        try:
            descriptor = self.layout.resolve(reference)
        except ReferenceNotFoundError:
            raise ResourceNotFoundError(f"{reference!r} is not in the OCI layout {self.layout.path}") from None
        return self._manifest(descriptor.digest, descriptor.media_type)

    def _manifest(self, digest: str, media_type: str | None = None) -> ManifestBlob:
        body = self.layout.read_manifest(digest)
        return ManifestBlob(body, media_type or parse_manifest(body).media_type, digest)

    def fetch_manifest(self, digest: str) -> ManifestBlob:
        return self._manifest(digest)

    def manifest_digest(self, reference: str) -> str | None:
        """The digest ``index.json`` lists under a tag (or that digest); ``None`` when it lists none."""
        try:
            return self.layout.resolve(reference).digest
        except ReferenceNotFoundError:
            return None

    def has_manifest(self, digest: str) -> bool:
        """True when the layout holds the manifest blob ``digest``."""
        return self.layout.has_blob(digest)

    def has_blob(self, digest: str) -> bool:
        return self.layout.has_blob(digest)

    def open_blob(self, digest: str, size: int | None = None) -> IO[bytes]:
        return self.layout.open_blob(digest)

    def write_blob(self, stream: IO[bytes], descriptor: Descriptor, advance: Advance) -> None:
        self.layout.write_blob(_reported_chunks(stream, advance), descriptor.digest)

    def download_from(self, source: RegistryStore, descriptor: Descriptor, advance: Advance) -> None:
        """Fetch a blob from a registry straight into the layout: the SDK's verified file download (parallel
        ranges for big blobs, one hash pass, temp file renamed into place) instead of a second hash here."""
        target = self.layout.blob_path(descriptor.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.client.download_blob_to_file(source.repository, descriptor.digest, target, progress=advance,
                                            size=descriptor.size)

    def write_manifest(self, manifest: ManifestBlob, tag: str | None, *, root: bool) -> None:
        self.layout.write_manifest(manifest.body, manifest.media_type, tag=tag, add_to_index=root)

    def tags(self) -> list[str]:
        return self.layout.tags()

    def referrers(self, digest: str) -> list[Descriptor]:
        found = []
        for entry in self.layout.index():
            try:
                manifest = parse_manifest(self.layout.read_manifest(entry.digest), entry.media_type)
            except (ValueError, OSError):
                continue
            if manifest.subject is not None and manifest.subject.digest == digest:
                found.append(entry)
        return found
