"""``dockyard index create | append``: multi-arch indexes from manifests already in a registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .artifacts import parse_annotations
from .connect import open_client, parse_reference, require_registry
from .errors import UsageError
from .options import GlobalOptions, command, current
from .output import emit_rows, print_json, status
from .refs import target

if TYPE_CHECKING:
    from ..workflows.indexes import IndexResult, Source

group = typer.Typer(help="Build multi-arch indexes from manifests already in the registry.", no_args_is_help=True,
                    epilog="Example:\n\n  dockyard index create -r 127.0.0.1:5000 demo/app:v1 demo/app:amd64 "
                           "demo/app:arm64")

IndexRef = Annotated[
    str, typer.Argument(metavar="REF", help="The index: [REGISTRY/]REPO:TAG.", show_default=False)
]
Sources = Annotated[
    list[str],
    typer.Argument(metavar="SRC...", help="Manifests to list: [REGISTRY/]REPO:TAG or [REGISTRY/]REPO@DIGEST, on "
                   "REF's registry.", show_default=False),
]


def _sources(texts: list[str], registry_url: str, options: GlobalOptions) -> list[Source]:
    from ..workflows.indexes import Source

    out = []
    for text in texts:
        ref = parse_reference(text, options, need_tag_or_digest=True)
        if require_registry(options, ref.registry) != registry_url:
            raise UsageError(f"{text!r} is on another registry than the index; copy it first with 'dockyard copy'")
        identifier = ref.digest or ref.tag
        assert identifier is not None
        out.append(Source(ref.repository, identifier))
    return out


def _show(options: GlobalOptions, result: IndexResult, verb: str) -> None:
    from ..workflows.indexes import entry_json

    if options.json:
        print_json(result.to_json())
        return
    status(options, f"{verb} {result.reference} ({result.digest})")
    for digest in result.replaced:
        status(options, f"Replaced {digest}")
    emit_rows(options, [entry_json(d) for d in result.manifests],
              [("platform", "PLATFORM"), ("digest", "DIGEST"), ("media_type", "MEDIA TYPE"), ("size", "SIZE")])


@command(group, "create", example="dockyard index create -r 127.0.0.1:5000 demo/app:v1 demo/app:amd64")
def create(
    ref: IndexRef,
    sources: Sources,
    annotation: Annotated[
        list[str] | None, typer.Option("--annotation", "-a", metavar="K=V", help="Index annotation; repeatable.")
    ] = None,
) -> None:
    """Push an OCI image index listing the SRC manifests, each with the platform its image config declares.

    A SRC that is an index contributes all its entries. A SRC in another repository is mounted into REF's
    (blobs are not downloaded). Two manifests of the same platform are refused.
    """
    from ..workflows.indexes import create_index

    options = current()
    t = target(ref, options, tag_only=True)
    url = require_registry(options, t.registry)
    srcs = _sources(sources, url, options)
    annotations = parse_annotations(annotation or [])
    with open_client(options, t.registry) as client:
        result = create_index(client, url, t.repository, t.identifier, srcs, annotations=annotations)
    _show(options, result, "Pushed index")


@command(group, "append", example="dockyard index append -r 127.0.0.1:5000 demo/app:v1 demo/app:arm64")
def append(
    ref: IndexRef,
    sources: Sources,
    replace: Annotated[
        bool, typer.Option("--replace/--no-replace", help="Replace an entry of the same platform (default), or "
                           "refuse.")
    ] = True,
) -> None:
    """Add the SRC manifests to the index REF and push it under the same tag.

    An entry of the same platform as a new one is replaced (--no-replace: refused); a manifest already listed
    stays listed once; the index keeps its media type, annotations and other entries.
    """
    from ..workflows.indexes import append_to_index

    options = current()
    t = target(ref, options, tag_only=True)
    url = require_registry(options, t.registry)
    srcs = _sources(sources, url, options)
    with open_client(options, t.registry) as client:
        result = append_to_index(client, url, t.repository, t.identifier, srcs, replace=replace)
    _show(options, result, "Updated index")


def register(app: typer.Typer) -> None:
    """Add the ``index`` group to ``app``."""
    app.add_typer(group, name="index")
