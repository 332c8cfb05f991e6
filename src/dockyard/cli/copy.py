"""``dockyard copy SRC DST``: between registries and OCI layout directories (``oci:DIR[:TAG]``)."""

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
"""


@dataclass
class Location:
    """A parsed SRC or DST: a layout directory or a registry repository, with an optional tag or digest."""

    layout: Path | None
    registry: str | None
    repository: str | None
    reference: str | None  # tag or digest

    @property
    def is_layout(self) -> bool:
        return self.layout is not None


def parse_location(text: str, options: GlobalOptions) -> Location:
    """``oci:DIR[:TAG|@DIGEST]`` or ``[REGISTRY/]REPO[:TAG|@DIGEST]``."""
    if text.startswith("oci:"):
        rest = text[len("oci:"):]
        if "@" in rest and is_digest(rest.rsplit("@", 1)[1]):
            path, _, ref = rest.rpartition("@")
            return Location(Path(path), None, None, ref)
        path, sep, tag = rest.rpartition(":")
        if sep and path and is_valid_tag(tag):
            return Location(Path(path), None, None, tag)
        if not rest:
            raise UsageError(f"{text!r}: expected oci:DIRECTORY[:TAG]")
        return Location(Path(rest), None, None, None)
    ref = parse_reference(text, options)
    return Location(None, ref.registry, ref.repository, ref.digest or ref.tag)


def open_store(location: Location, options: GlobalOptions, stack: ExitStack, *, create: bool) -> Store:
    """The store for a location (clients are closed when ``stack`` closes)."""
    from ..layout import OCILayout
    from ..workflows.stores import LayoutStore, RegistryStore

    if location.layout is not None:
        layout = OCILayout(location.layout)
        return LayoutStore(layout.create() if create else OCILayout.open(location.layout))
    url = require_registry(options, location.registry)
    client = stack.enter_context(open_client(options, location.registry))
    assert location.repository is not None
    return RegistryStore(client, location.repository, url)


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
        source: Annotated[str, typer.Argument(metavar="SRC", help="[REGISTRY/]REPO[:TAG|@DIGEST] or oci:DIR[:TAG].")],
        destination: Annotated[str, typer.Argument(metavar="DST", help="[REGISTRY/]REPO[:TAG] or oci:DIR[:TAG].")],
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
        else:
            if dst.reference and is_digest(dst.reference):
                raise UsageError(f"{destination!r}: the destination takes a tag, not a digest")
            if src.reference is None and src.is_layout:
                raise UsageError(f"{source!r}: name the image in the layout (oci:DIR:TAG) or use --all-tags")
        with ExitStack() as stack:
            src_store = open_store(src, options, stack, create=False)
            dst_store = open_store(dst, options, stack, create=True)
            progress = stack.enter_context(transfer_progress(options))
            if all_tags:
                result = copy_all_tags(src_store, dst_store, platforms=platforms, referrers=referrers,
                                       progress=progress, concurrency=concurrency)
            else:
                reference = src.reference or "latest"
                tag = dst.reference or (None if is_digest(reference) else reference)
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
