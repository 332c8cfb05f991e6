"""The registry's rules: names, pushes, pulls, deletes and locks, over the blob and metadata stores.

The HTTP layers (``api/distribution.py`` for ``/v2``, ``api/acr.py`` for ``/acr/v1``) only translate requests
and responses; every decision about what is allowed or stored is made here, once, for both APIs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..oci import mediatypes as mt
from ..oci.digest import Digest, InvalidDigestError, compute_digest, is_digest_reference
from ..oci.manifest import InvalidManifestError, Manifest, parse_image_config, parse_manifest
from ..oci.names import is_valid_repository, is_valid_tag
from ..oci.strict_json import MAX_INT
from . import errors as e
from .offload import StoreThreads
from .storage.blobs import BlobStore, UploadBusyError, UploadOffsetError, UploadState, UploadStore, open_blob
from .storage.metadata import ManifestRecord, MetadataStore
from .storage.private import make_private_dir

#: Largest image config read to derive platform metadata.
MAX_CONFIG_READ = 4 * 1024 * 1024
#: Smallest PATCH chunk a client is asked to send (``OCI-Chunk-Min-Length``); the last one may be shorter.
CHUNK_MIN_LENGTH = 0


def check_name(name: str) -> str:
    """``name`` if it is a valid repository name, else a 400 NAME_INVALID."""
    if not is_valid_repository(name):
        raise e.name_invalid(name)
    return name


def check_digest(value: str) -> Digest:
    """The parsed digest, else a 400 DIGEST_INVALID (never a 500)."""
    try:
        return Digest.parse(value)
    except InvalidDigestError as exc:
        raise e.digest_invalid(str(exc), value) from None


@dataclass(frozen=True)
class StoredManifest:
    """A manifest as pulled: its digest, media type and exact bytes."""

    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class PushResult:
    digest: str
    subject: str | None
    #: The tags applied from ``?tag=`` query parameters (answered as ``OCI-Tag`` headers).
    tags: tuple[str, ...] = ()


def check_manifest_content_type(content_type: str | None) -> None:
    """A manifest push declares one of the manifest media types, or nothing (then the body's ``mediaType`` or
    shape decides); anything else (``text/html``, ``application/json``) is a 400 MANIFEST_INVALID."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared and declared not in mt.MANIFEST_TYPES:
        allowed = ", ".join(sorted(mt.MANIFEST_TYPES))
        raise e.manifest_invalid(f"Content-Type {declared!r} is not a manifest media type (one of {allowed})")


def _enabled(row: sqlite3.Row | None, column: str) -> bool:
    return row is None or bool(row[column])


class Registry:
    """The registry over one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        make_private_dir(self.data_dir)
        self.blobs = BlobStore(self.data_dir)
        self.uploads = UploadStore(self.data_dir)
        self.meta = MetadataStore(self.data_dir)
        #: Where handlers run the blocking methods below (``await reg.threads.read(reg.get_manifest, …)``).
        self.threads = StoreThreads(self.meta)

    def close(self) -> None:
        self.threads.close()
        self.meta.close()

    # -- repositories and locks ---------------------------------------------------------------------------------

    def repository(self, name: str) -> sqlite3.Row:
        """The repository row, else 404 NAME_UNKNOWN.

        As on ACR, a repository exists while it holds a manifest: once its last manifest is deleted (or when only
        blobs were ever uploaded to it) ``/acr/v1`` answers NAME_UNKNOWN and both catalogs omit it; only the ``/v2``
        tag list (see :meth:`repository_record`) still answers, with no tags.
        """
        check_name(name)
        row = self.meta.repository(name)
        if row is None or not self.meta.has_manifests(row["id"]):
            raise e.name_unknown(name)
        return row

    def repository_record(self, name: str) -> sqlite3.Row:
        """The repository row even when it no longer holds a manifest, else 404 NAME_UNKNOWN.

        ``GET /v2/<name>/tags/list`` uses it: a repository whose last manifest was deleted lists no tags (200, as
        the distribution-spec allows and its conformance suite expects) until it is deleted as a whole.
        """
        check_name(name)
        row = self.meta.repository(name)
        if row is None:
            raise e.name_unknown(name)
        return row

    @staticmethod
    def check_readable(what: str, *rows: sqlite3.Row | None) -> None:
        for row in rows:
            if not _enabled(row, "read_enabled"):
                raise e.locked(f"{what} is locked for reading (readEnabled is false)")

    @staticmethod
    def check_writable(what: str, *rows: sqlite3.Row | None) -> None:
        for row in rows:
            if not _enabled(row, "write_enabled"):
                raise e.locked(f"{what} is locked for writing (writeEnabled is false)")

    @staticmethod
    def check_deletable(what: str, *rows: sqlite3.Row | None) -> None:
        """A delete needs ``deleteEnabled`` and ``writeEnabled`` (as ACR: a write-locked artifact is immutable)."""
        for row in rows:
            if not _enabled(row, "delete_enabled"):
                raise e.locked(f"{what} is locked against deletion (deleteEnabled is false)")
            if not _enabled(row, "write_enabled"):
                raise e.locked(f"{what} is locked (writeEnabled is false) and cannot be deleted")

    def check_push_allowed(self, name: str) -> None:
        """Refuse pushes into a write-locked repository."""
        check_name(name)
        self.check_writable(f"repository {name}", self.meta.repository(name))

    def delete_repository(self, name: str) -> tuple[list[str], list[str]]:
        """Delete a repository with all its manifests and tags (405 if any of them is locked)."""
        check_name(name)
        with self.meta.write():
            repo = self.meta.repository(name)
            if repo is None:
                raise e.name_unknown(name)
            self.check_deletable(f"repository {name}", repo)
            locked_digest = self.meta.undeletable("manifests", "digest", repo["id"])
            if locked_digest is not None:
                raise e.locked(f"manifest {locked_digest} in {name} is locked against deletion")
            locked_tag = self.meta.undeletable("tags", "name", repo["id"])
            if locked_tag is not None:
                raise e.locked(f"tag {name}:{locked_tag} is locked against deletion")
            return self.meta.delete_repository(repo["id"])

    # -- blobs --------------------------------------------------------------------------------------------------

    def _linked_blob(self, name: str, digest: Digest) -> sqlite3.Row | None:
        repo = self.meta.repository(name)
        if repo is None:
            return None
        return self.meta.blob_link(repo["id"], str(digest))

    def open_blob(self, name: str, digest_text: str) -> tuple[Digest, int, int]:
        """Open a blob of repository ``name`` for reading: ``(digest, fd, size)``; the caller closes ``fd``."""
        check_name(name)
        digest = check_digest(digest_text)
        repo = self.meta.repository(name)
        if repo is None:
            raise e.blob_unknown(str(digest))
        self.check_readable(f"repository {name}", repo)
        if self.meta.blob_link(repo["id"], str(digest)) is None:
            raise e.blob_unknown(str(digest))
        opened = open_blob(self.blobs.path(digest))
        if opened is None:
            raise e.blob_unknown(str(digest))
        return digest, opened[0], opened[1]

    def delete_blob(self, name: str, digest_text: str) -> None:
        """Unlink a blob from a repository (garbage collection removes the bytes once nothing links them)."""
        check_name(name)
        digest = check_digest(digest_text)
        with self.meta.write():
            repo = self.meta.repository(name)
            if repo is None or self.meta.blob_link(repo["id"], str(digest)) is None:
                raise e.blob_unknown(str(digest))
            self.check_deletable(f"repository {name}", repo)
            holder = self._locked_holder(repo["id"], str(digest))
            if holder is not None:
                raise e.locked(f"blob {digest} is part of {name}@{holder}, which is locked against deletion")
            self.meta.unlink_blob(repo["id"], str(digest))

    def _locked_holder(self, repo_id: int, digest: str) -> str | None:
        """The digest of a manifest of the repository that names blob ``digest`` and must stay whole: one whose
        delete or write lock is on, one a locked tag points to, or a child of such an index. ``None`` if none."""
        pending = list(self.meta.locked_manifests(repo_id))
        seen = {row["digest"] for row in pending}
        while pending:
            row = pending.pop()
            try:
                parsed = parse_manifest(bytes(row["content"]), row["media_type"])
            except InvalidManifestError:
                continue
            if any(desc.digest == digest for desc in parsed.blobs()):
                return str(row["digest"])
            for child in parsed.manifests:
                if child.digest not in seen:
                    seen.add(child.digest)
                    child_row = self.meta.manifest(repo_id, child.digest, with_content=True)
                    if child_row is not None:
                        pending.append(child_row)
        return None

    def mount_blob(self, name: str, digest_text: str, source: str) -> bool:
        """Link an existing blob of ``source`` into ``name``; False when ``source`` does not hold it."""
        check_name(name)
        digest = check_digest(digest_text)
        if not is_valid_repository(source):
            return False
        with self.meta.write():
            src = self.meta.repository(source)
            if src is None or not src["read_enabled"] or self.meta.blob_link(src["id"], str(digest)) is None:
                return False
            size = self.blobs.size(digest)
            if size is None:
                return False
            repo = self.meta.repository(name)
            self.check_writable(f"repository {name}", repo)
            repo_id = self.meta.ensure_repository(name)
            self.meta.link_blob(repo_id, str(digest), size)
        return True

    # -- uploads ------------------------------------------------------------------------------------------------

    def start_upload(self, name: str) -> str:
        self.check_push_allowed(name)
        return self.uploads.create(name)

    def upload(self, name: str, upload_id: str) -> UploadState:
        """The session ``upload_id`` of repository ``name``, else 404 BLOB_UPLOAD_UNKNOWN."""
        check_name(name)
        state = self.uploads.state(upload_id)
        if state is None or state.repository != name:
            raise e.upload_unknown(upload_id)
        return state

    async def append_upload(self, name: str, upload_id: str, body: AsyncIterator[bytes], start: int | None) -> int:
        """Append a chunk; 416 when ``start`` is not the current offset. Returns the new offset."""
        self.upload(name, upload_id)
        try:
            return await self.uploads.append(upload_id, body, start)
        except UploadBusyError:
            state = self.upload(name, upload_id)
            raise e.range_invalid(
                "another request is writing to this upload session", headers=upload_headers(name, state)
            ) from None
        except FileNotFoundError:
            raise e.upload_unknown(upload_id) from None
        except UploadOffsetError as exc:
            offset = exc.offset
            state = UploadState(upload_id, name, 0, offset)
            raise e.range_invalid(
                f"chunk starts at {start} but the upload has {offset} bytes", headers=upload_headers(name, state)
            ) from None

    async def finish_upload(self, name: str, upload_id: str, digest_text: str | None) -> Digest:
        """Verify the session against ``digest`` and commit it as a blob of ``name``."""
        self.upload(name, upload_id)
        if not digest_text:
            raise e.digest_invalid("the digest query parameter is required to finish an upload")
        digest = check_digest(digest_text)
        try:
            async with self.uploads.sealed(upload_id, digest.algorithm) as (actual, size):
                if actual == str(digest):
                    await self.threads.write(self._commit_upload, name, upload_id, digest, size)
        except UploadBusyError:
            raise e.range_invalid("another request is writing to this upload session") from None
        except FileNotFoundError:
            raise e.upload_unknown(upload_id) from None
        await asyncio.to_thread(self.uploads.discard, upload_id)  # unlinking a large file takes a while
        if actual != str(digest):
            raise e.digest_invalid(f"the uploaded content has digest {actual}, not {digest}", str(digest))
        return digest

    def _commit_upload(self, name: str, upload_id: str, digest: Digest, size: int) -> None:
        """Adopt a verified session's data file as blob ``digest`` and link it into ``name`` (one transaction)."""
        with self.meta.write():
            self.check_writable(f"repository {name}", self.meta.repository(name))
            # Always the freshly verified file: a stored copy that rotted on disk is replaced.
            self.blobs.adopt(self.uploads.data_path(upload_id), digest)
            repo_id = self.meta.ensure_repository(name)
            self.meta.link_blob(repo_id, str(digest), size)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.upload(name, upload_id)
        self.uploads.discard(upload_id)

    # -- manifests ----------------------------------------------------------------------------------------------

    def resolve_reference(self, repo: sqlite3.Row, reference: str) -> tuple[sqlite3.Row | None, str | None]:
        """(tag row or None, digest) for a tag or digest reference; the digest is None for an unknown tag
        (400 DIGEST_INVALID / TAG_INVALID for a malformed reference)."""
        if is_digest_reference(reference):
            return None, str(check_digest(reference))
        if not is_valid_tag(reference):
            raise e.tag_invalid(reference)
        tag = self.meta.tag(repo["id"], reference)
        return tag, tag["digest"] if tag is not None else None

    def _resolve(self, repo: sqlite3.Row, reference: str) -> tuple[sqlite3.Row | None, sqlite3.Row | None]:
        """(tag row or None, manifest row with content or None) for a tag or digest reference."""
        tag, digest = self.resolve_reference(repo, reference)
        if digest is None:
            return None, None
        return tag, self.meta.manifest(repo["id"], digest, with_content=True)

    def get_manifest(self, name: str, reference: str) -> StoredManifest:
        """The manifest for a tag or digest (404 MANIFEST_UNKNOWN, 405 when read-locked)."""
        check_name(name)
        repo = self.meta.repository(name)
        if is_digest_reference(reference):
            check_digest(reference)
        elif not is_valid_tag(reference):
            # No manifest can be stored under a malformed tag: unknown (as distribution and the OCI conformance
            # suite expect); writes with a malformed tag stay 400 TAG_INVALID.
            raise e.manifest_unknown(reference)
        if repo is None:
            raise e.name_unknown(name)
        tag, manifest = self._resolve(repo, reference)
        if manifest is None:
            raise e.manifest_unknown(reference)
        self.check_readable(f"{name}:{reference}", repo, tag, manifest)
        return StoredManifest(manifest["digest"], manifest["media_type"], bytes(manifest["content"]))

    def _validate_references(self, repo_id: int | None, manifest: Manifest) -> None:
        """Every blob and child manifest the manifest names must be in the repository.

        Each distinct digest is checked once, and the links of all of them are looked up together: a manifest
        naming one layer 38,000 times costs one query and one ``stat``, not 38,000 of each.
        """
        blobs: dict[str, None] = {}
        inline: dict[tuple[str, str], bool] = {}
        for desc in manifest.blobs():
            if desc.data is not None:
                key = (desc.data, desc.digest)
                if key not in inline:
                    inline[key] = _inline_matches(desc.data, desc.digest)
                if inline[key]:
                    continue
            blobs.setdefault(desc.digest)
        children = list(dict.fromkeys(child.digest for child in manifest.manifests))
        linked = self.meta.linked_digests(repo_id, blobs) if repo_id is not None else set()
        for digest in blobs:
            if digest not in linked:
                raise e.manifest_blob_unknown(digest)
            # The link and the file: garbage collection removes both in one transaction, but a collection that
            # died halfway can leave a link to a deleted file behind. A manifest never names a missing blob.
            try:
                stored = self.blobs.size(Digest.parse(digest))
            except InvalidDigestError:
                stored = None
            if stored is None:
                raise e.manifest_blob_unknown(digest)
        present = self.meta.manifest_digests(repo_id, children) if repo_id is not None else set()
        for digest in children:
            if digest not in present:
                raise e.manifest_blob_unknown(digest)

    def _platform(self, manifest: Manifest) -> tuple[str | None, str | None]:
        config = manifest.config
        if config is None or config.media_type not in mt.CONFIG_TYPES:
            return None, None
        try:
            raw = self.blobs.read(Digest.parse(config.digest), MAX_CONFIG_READ)
        except InvalidDigestError:
            return None, None
        parsed = parse_image_config(raw) if raw is not None else None
        if parsed is None:
            return None, None
        return parsed.platform.architecture, parsed.platform.os

    def put_manifest(
        self, name: str, reference: str, body: bytes, content_type: str | None, extra_tags: Sequence[str] = ()
    ) -> PushResult:
        """Store a manifest under a tag or digest: validated, byte-for-byte, in one transaction.

        ``extra_tags`` (``?tag=`` query parameters) are applied too, all or none: one malformed or locked tag
        refuses the whole push.
        """
        check_name(name)
        extra = list(dict.fromkeys(extra_tags))
        for extra_tag in extra:
            if not is_valid_tag(extra_tag):
                raise e.tag_invalid(extra_tag)
        check_manifest_content_type(content_type)
        tag: str | None = None
        if is_digest_reference(reference):
            wanted = check_digest(reference)
            digest = compute_digest(body, wanted.algorithm)
            if digest != str(wanted):
                raise e.digest_invalid(f"the manifest has digest {digest}, not {wanted}", str(wanted))
        else:
            if not is_valid_tag(reference):
                raise e.tag_invalid(reference)
            tag = reference
            digest = compute_digest(body)
        if len(body) > mt.MAX_MANIFEST_SIZE:
            raise e.manifest_invalid(f"manifest is {len(body)} bytes; the limit is {mt.MAX_MANIFEST_SIZE}", 413)
        try:
            manifest = parse_manifest(body, content_type)
        except InvalidManifestError as exc:
            raise e.manifest_invalid(str(exc)) from None
        if manifest.media_type not in mt.MANIFEST_TYPES:
            raise e.manifest_invalid(f"mediaType {manifest.media_type!r} is not a manifest media type")
        image_size = len(body) + sum(d.size for d in (*manifest.blobs(), *manifest.manifests))
        if image_size > MAX_INT:
            raise e.manifest_invalid("the sizes of the manifest's descriptors add up past 2**63 - 1 bytes")
        architecture, os_name = self._platform(manifest)
        record = ManifestRecord(
            digest=digest,
            media_type=manifest.media_type,
            content=body,
            image_size=image_size,
            config_media_type=manifest.config.media_type if manifest.config else None,
            artifact_type=manifest.effective_artifact_type,
            subject=manifest.subject.digest if manifest.subject else None,
            annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
            architecture=architecture,
            os=os_name,
        )
        with self.meta.write():
            repo = self.meta.repository(name)
            self.check_writable(f"repository {name}", repo)
            repo_id = repo["id"] if repo is not None else None
            tags = list(dict.fromkeys([tag, *extra] if tag is not None else extra))
            if repo_id is not None:
                self.check_writable(f"manifest {digest}", self.meta.manifest(repo_id, digest))
                for each in tags:
                    self.check_writable(f"tag {name}:{each}", self.meta.tag(repo_id, each))
            self._validate_references(repo_id, manifest)
            repo_id = self.meta.ensure_repository(name)
            self.meta.put_manifest(repo_id, record)
            for each in tags:
                self.meta.put_tag(repo_id, each, digest)
            self.meta.touch_repository(repo_id)
        return PushResult(digest, record.subject, tuple(extra))

    def delete_manifest(self, name: str, reference: str) -> None:
        """Delete by digest (the manifest and its tags) or by tag (untag only)."""
        check_name(name)
        if is_digest_reference(reference):
            digest = str(check_digest(reference))
            with self.meta.write():
                repo = self.meta.repository(name)
                row = self.meta.manifest(repo["id"], digest) if repo is not None else None
                if repo is None or row is None:
                    raise e.manifest_unknown(reference)
                self.check_deletable(f"repository {name}", repo)
                self.check_deletable(f"manifest {digest}", row)
                locked_tag = self.meta.undeletable("tags", "name", repo["id"], digest)
                if locked_tag is not None:
                    raise e.locked(f"tag {name}:{locked_tag} is locked against deletion")
                self.meta.delete_manifest(repo["id"], digest)
                self.meta.touch_repository(repo["id"])
        else:
            self.delete_tag(name, reference)

    def delete_tag(self, name: str, tag: str) -> None:
        """Remove a tag (the manifest stays)."""
        check_name(name)
        if not is_valid_tag(tag):
            raise e.tag_invalid(tag)
        with self.meta.write():
            repo = self.meta.repository(name)
            row = self.meta.tag(repo["id"], tag) if repo is not None else None
            if repo is None or row is None:
                raise e.tag_unknown(tag) if repo is not None else e.name_unknown(name)
            self.check_deletable(f"repository {name}", repo)
            self.check_deletable(f"tag {name}:{tag}", row)
            self.meta.delete_tag(repo["id"], tag)
            self.meta.touch_repository(repo["id"])

    def referrers(self, name: str, digest_text: str, artifact_type: str | None) -> list[sqlite3.Row]:
        check_name(name)
        digest = check_digest(digest_text)
        repo = self.meta.repository(name)
        if repo is None:
            return []
        self.check_readable(f"repository {name}", repo)
        return self.meta.referrers(repo["id"], str(digest), artifact_type)

    def update_attributes(self, name: str, kind: str, key: str | None, changes: dict[str, bool]) -> None:
        """Set changeable attributes of the repository (kind ``repository``), a tag or a manifest."""
        with self.meta.write():
            repo = self.repository(name)
            if kind == "repository":
                self.meta.set_attributes("repositories", "id = ?", [repo["id"]], changes)
            elif kind == "tag":
                if self.meta.tag(repo["id"], key or "") is None:
                    raise e.tag_unknown(key or "")
                self.meta.set_attributes("tags", "repo_id = ? AND name = ?", [repo["id"], key], changes)
            else:
                if self.meta.manifest(repo["id"], key or "") is None:
                    raise e.manifest_unknown(key or "")
                self.meta.set_attributes("manifests", "repo_id = ? AND digest = ?", [repo["id"], key], changes)


def _inline_matches(data: str, digest: str) -> bool:
    """True when a descriptor's inline ``data`` (base64) hashes to its digest."""
    try:
        raw = base64.b64decode(data, validate=True)
        wanted = Digest.parse(digest)
    except (binascii.Error, ValueError):
        return False
    return compute_digest(raw, wanted.algorithm) == str(wanted)


def upload_location(name: str, upload_id: str) -> str:
    """The relative URL of an upload session."""
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def upload_headers(name: str, state: UploadState) -> dict[str, str]:
    """Headers describing an upload session's progress (``Location``, ``Range``, ``Docker-Upload-UUID``)."""
    return {
        "Location": upload_location(name, state.id),
        "Range": f"0-{max(state.offset - 1, 0)}",
        "Docker-Upload-UUID": state.id,
    }
