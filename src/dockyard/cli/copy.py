"""``dockyard copy SRC DST``: between registries, OCI layout directories (``oci:DIR[:TAG]``) and image archives
(``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:NAME:TAG]``)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..oci.digest import is_digest
from ..oci.manifest import Platform
from ..oci.names import is_valid_tag
from .connect import open_client, parse_reference, require_registry
from .errors import UsageError
from .options import GlobalOptions, command, current
from .output import emit_rows, print_json, status
from .progress import transfer_progress

if TYPE_CHECKING:
    from ..workflows.copy import CopyResult
    from ..workflows.stores import Store

EXAMPLE = """
dockyard copy oci:./image-layout:v1 127.0.0.1:5000/demo/app:v1
dockyard copy 127.0.0.1:5000/demo/app:v1 127.0.0.1:5000/mirror/app:v1 --platform linux/amd64 --referrers
dockyard copy 127.0.0.1:5000/demo/app oci:./backup --all-tags
dockyard copy 127.0.0.1:5000/demo/app:v1 docker-archive:./app.tar:demo/app:v1 --platform linux/amd64
dockyard copy docker-archive:./app.tar 127.0.0.1:5000/demo/app:amd64
"""

#: The archive transports, as skopeo spells them.
OCI_ARCHIVE = "oci-archive"
DOCKER_ARCHIVE = "docker-archive"


@dataclass
class Location:
    """A parsed SRC or DST: a layout directory, an archive file or a registry repository, with an optional tag or
    digest (for a docker-archive: ``NAME:TAG`` or ``@INDEX``)."""

    layout: Path | None
    registry: str | None
    repository: str | None
    reference: str | None  # tag or digest
    archive: str | None = None  # OCI_ARCHIVE or DOCKER_ARCHIVE; ``layout`` is then the archive file

    @property
    def is_layout(self) -> bool:
        return self.layout is not None


def _path_and_tag(text: str, rest: str, what: str) -> tuple[Path, str | None]:
    """``PATH[:TAG|@DIGEST]`` of ``oci:`` and ``oci-archive:``."""
    if "@" in rest and is_digest(rest.rsplit("@", 1)[1]):
        path, _, ref = rest.rpartition("@")
        return Path(path), ref
    path, sep, tag = rest.rpartition(":")
    if sep and path and is_valid_tag(tag):
        return Path(path), tag
    if not rest:
        raise UsageError(f"{text!r}: expected {what}[:TAG]")
    return Path(rest), None


def _docker_archive(text: str, rest: str) -> Location:
    """``docker-archive:FILE[:NAME[:TAG]|:@INDEX]`` (the path ends at the first colon, as in skopeo)."""
    from ..workflows.archives import docker_archive_tag

    path, _, ref = rest.partition(":")
    if not path:
        raise UsageError(f"{text!r}: expected docker-archive:FILE[:NAME:TAG]")
    if ref and not (ref.startswith("@") and ref[1:].isdigit()):
        try:
            ref = docker_archive_tag(ref)
        except ValueError as exc:
            raise UsageError(f"{text!r}: {exc}") from None
    return Location(Path(path), None, None, ref or None, DOCKER_ARCHIVE)


def parse_location(text: str, options: GlobalOptions) -> Location:
    """``oci:DIR[:TAG|@DIGEST]``, ``oci-archive:FILE[:TAG|@DIGEST]``, ``docker-archive:FILE[:NAME:TAG|:@N]`` or
    ``[REGISTRY/]REPO[:TAG|@DIGEST]``."""
    if text.startswith("oci:"):
        path, ref = _path_and_tag(text, text[len("oci:"):], "oci:DIRECTORY")
        return Location(path, None, None, ref)
    if text.startswith(f"{OCI_ARCHIVE}:"):
        path, ref = _path_and_tag(text, text[len(OCI_ARCHIVE) + 1:], "oci-archive:FILE")
        return Location(path, None, None, ref, OCI_ARCHIVE)
    if text.startswith(f"{DOCKER_ARCHIVE}:"):
        return _docker_archive(text, text[len(DOCKER_ARCHIVE) + 1:])
    parsed = parse_reference(text, options)
    return Location(None, parsed.registry, parsed.repository, parsed.digest or parsed.tag)


def open_store(location: Location, options: GlobalOptions, stack: ExitStack, *, create: bool) -> Store:
    """The store for a location (clients are closed, archives written are committed or discarded, when ``stack``
    closes)."""
    from ..layout import OCILayout
    from ..workflows.stores import LayoutStore, RegistryStore

    if location.archive is not None:
        return _open_archive(location, stack, create=create)
    if location.layout is not None:
        layout = OCILayout(location.layout)
        return LayoutStore(layout.create() if create else OCILayout.open(location.layout))
    url = require_registry(options, location.registry)
    client = stack.enter_context(open_client(options, location.registry))
    assert location.repository is not None
    return RegistryStore(client, location.repository, url)


def _open_archive(location: Location, stack: ExitStack, *, create: bool) -> Store:
    from ..workflows import archives

    assert location.layout is not None
    if create:
        if location.archive == OCI_ARCHIVE:
            return stack.enter_context(archives.OCIArchiveWriter(location.layout))
        return stack.enter_context(archives.DockerArchiveWriter(location.layout))
    if location.archive == OCI_ARCHIVE:
        return archives.OCIArchiveSource(location.layout)
    return archives.DockerArchiveSource(location.layout)


def _tag_of(reference: str | None) -> str | None:
    """The tag part of an archive reference (``v1`` of ``v1`` and of ``demo/app:v1``); none for digests and ``@N``."""
    if not reference or reference.startswith("@") or is_digest(reference):
        return None
    return reference.rsplit(":", 1)[-1] if "/" in reference or ":" in reference else reference


def _references(src: Location, dst: Location, src_store: Store, destination: str) -> tuple[str, str | None]:
    """The source reference to copy and the tag (for a docker-archive: ``NAME:TAG``) to give it at the
    destination."""
    reference = src.reference or "latest"
    if src.reference is None and src.archive is not None:
        # Only the archive sources (``src.archive`` is set) have a default reference: the image the archive names.
        reference = src_store.default_reference()  # type: ignore[attr-defined]
    if dst.archive == DOCKER_ARCHIVE:
        if dst.reference and dst.reference.startswith("@"):
            raise UsageError(f"{destination!r}: name the image as docker-archive:FILE:NAME:TAG")
        if dst.reference:
            return reference, dst.reference
        if src.repository is not None and not is_digest(reference):
            return reference, src_store.describe(reference)  # what `docker pull` would have named it
        return reference, None
    if dst.reference:
        return reference, dst.reference
    if src.archive is not None:
        return reference, _tag_of(src.reference)
    return reference, None if is_digest(reference) else reference


def parse_platforms(values: list[str]) -> list[Platform]:
    try:
        return [Platform.parse(v) for v in values]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _rows(result: CopyResult) -> list[dict[str, Any]]:
    return [{"source": i.source, "destination": i.destination, "digest": i.digest,
             "referrers": len(i.referrers)} for i in result.images]


def register(app: typer.Typer) -> None:
    """Add ``copy`` to ``app``."""

    @command(app, "copy", example=EXAMPLE)
    def copy(
        source: Annotated[str, typer.Argument(
            metavar="SRC", help="[REGISTRY/]REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG] or "
                                "docker-archive:FILE[:NAME:TAG].")],
        destination: Annotated[str, typer.Argument(
            metavar="DST", help="[REGISTRY/]REPO[:TAG], oci:DIR[:TAG], oci-archive:FILE[:TAG] or "
                                "docker-archive:FILE[:NAME:TAG].")],
        platform: Annotated[
            list[str] | None,
            typer.Option("--platform", metavar="OS/ARCH[/VARIANT]", help="Copy only these platforms; repeatable."),
        ] = None,
        referrers: Annotated[bool, typer.Option("--referrers", help="Also copy signatures, SBOMs and other referrers.")
                             ] = False,
        all_tags: Annotated[bool, typer.Option("--all-tags", help="Copy every tag of the source repository.")] = False,
        concurrency: Annotated[int, typer.Option("--concurrency", help="Parallel blob transfers.")] = 4,
    ) -> None:
        """Copy an image, a multi-arch index (whole or some platforms) or an artifact.

        Blobs the destination holds are skipped, blobs on the same registry are mounted, the rest move in
        parallel. Manifests keep their digests (except an index rewritten by --platform).
        """
        from ..workflows.copy import CopyResult, copy_all_tags, copy_image

        options = current()
        src = parse_location(source, options)
        dst = parse_location(destination, options)
        platforms = parse_platforms(platform or [])
        if all_tags:
            if src.reference or dst.reference:
                raise UsageError("--all-tags copies whole repositories: give SRC and DST without a tag or digest")
            if DOCKER_ARCHIVE in (src.archive, dst.archive):
                raise UsageError("--all-tags works with registries, oci: layouts and oci-archive: files, not with "
                                 "docker-archive:")
        else:
            if dst.reference and is_digest(dst.reference):
                raise UsageError(f"{destination!r}: the destination takes a tag, not a digest")
            if src.reference is None and src.is_layout and src.archive is None:
                raise UsageError(f"{source!r}: name the image in the layout (oci:DIR:TAG) or use --all-tags")
        if referrers and dst.archive == DOCKER_ARCHIVE:
            raise UsageError("a docker-archive holds images only: it cannot take --referrers")
        with ExitStack() as stack:
            src_store = open_store(src, options, stack, create=False)
            dst_store = open_store(dst, options, stack, create=True)
            progress = stack.enter_context(transfer_progress(options))
            if all_tags:
                result = copy_all_tags(src_store, dst_store, platforms=platforms, referrers=referrers,
                                       progress=progress, concurrency=concurrency)
            else:
                reference, tag = _references(src, dst, src_store, destination)
                result = CopyResult()
                result.images.append(
                    copy_image(src_store, reference, dst_store, tag, platforms=platforms, referrers=referrers,
                               progress=progress, concurrency=concurrency, stats=result.stats)
                )
        if options.json:
            print_json(result.to_json())
            return
        for image in result.images:
            status(options, f"Copied {image.source} -> {image.destination}")
        stats = result.stats
        status(options, f"{stats.blobs_copied} blob(s) copied, {stats.blobs_skipped} already present, "
                        f"{stats.blobs_mounted} mounted, {stats.manifests} manifest(s) written")
        emit_rows(options, _rows(result), [("source", "SOURCE"), ("destination", "DESTINATION"),
                                           ("digest", "DIGEST"), ("referrers", "REFERRERS")])
