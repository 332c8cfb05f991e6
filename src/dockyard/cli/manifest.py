"""``dockyard manifest list | show | get | put | update | delete | referrers``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .connect import open_client, parse_reference
from .errors import UsageError
from .locks import LockOptions, update_locks, with_lock_options
from .options import command, current
from .output import descriptor_dict, emit_rows, list_properties, manifest_dict, print_json, report, show_properties
from .refs import OrderBy, Top, repository_target, target
from .repo import Repository

group = typer.Typer(help="List, inspect, lock and delete manifests; find referrers.", no_args_is_help=True,
                    epilog="Example:\n\n  dockyard manifest show -r 127.0.0.1:5000 library/hello:v1")

Ref = Annotated[
    str,
    typer.Argument(metavar="REF", help="REPO:TAG or REPO@DIGEST, e.g. library/hello:v1.", show_default=False),
]

_COLUMNS = [("digest", "DIGEST"), ("tags", "TAGS"), ("media_type", "MEDIA TYPE"), ("os", "OS"),
            ("architecture", "ARCH"), ("total_size", "TOTAL SIZE"), ("last_updated_on", "UPDATED")]


@command(group, "list", example="dockyard manifest list -r 127.0.0.1:5000 library/hello --orderby time_asc")
def list_manifests(repository: Repository, orderby: OrderBy = None, top_: Top = None) -> None:
    """List the manifests of a repository with tags, platform, size and times."""
    options = current()
    registry, name = repository_target(repository, options)
    lister = lambda client: client.list_manifest_properties  # noqa: E731
    list_properties(options, registry, name, lister, orderby, top_, manifest_dict, _COLUMNS)


@command(group, "show", example="dockyard manifest show -r 127.0.0.1:5000 library/hello:v1")
def show_manifest(ref: Ref) -> None:
    """Show a manifest's properties (platform, size, tags, times, locks)."""
    options = current()
    t = target(ref, options)
    show_properties(
        options, t.registry, lambda client: client.get_manifest_properties(t.repository, t.identifier), manifest_dict
    )


@command(group, "get", example="dockyard manifest get -r 127.0.0.1:5000 library/hello:v1 > manifest.json")
def get_manifest(ref: Ref) -> None:
    """Print the manifest exactly as the registry stores it (raw JSON bytes)."""
    options = current()
    t = target(ref, options)
    with open_client(options, t.registry) as client:
        result = client.get_manifest(t.repository, t.identifier)
    out = sys.stdout.buffer
    out.write(result.content)
    if not result.content.endswith(b"\n") and sys.stdout.isatty():
        out.write(b"\n")
    out.flush()


@command(group, "update", example="dockyard manifest update -r 127.0.0.1:5000 library/hello:v1 --delete-enabled false")
@with_lock_options
def update_manifest(ref: Ref, locks: LockOptions) -> None:
    """Lock or unlock a manifest."""
    options = current()
    t = target(ref, options)
    update_locks(
        options,
        t.registry,
        lambda client, **changes: client.update_manifest_properties(t.repository, t.identifier, **changes),
        manifest_dict,
        locks,
    )


@command(group, "delete", example="dockyard manifest delete -r 127.0.0.1:5000 library/hello:v1")
def delete_manifest(ref: Ref) -> None:
    """Delete a manifest (and with it every tag that points to it)."""
    options = current()
    t = target(ref, options)
    with open_client(options, t.registry) as client:
        digest = client.get_manifest_descriptor(t.repository, t.identifier).digest  # unknown refs are an error
        client.delete_manifest(t.repository, digest)
    report(options, {"deleted": f"{t.repository}@{digest}"}, f"Deleted {t.repository}@{digest}")


@command(
    group,
    "referrers",
    example="dockyard manifest referrers -r 127.0.0.1:5000 library/hello:v1 --artifact-type application/example",
)
def list_referrers(
    ref: Ref,
    artifact_type: Annotated[str | None, typer.Option("--artifact-type", help="Only this artifact type.")] = None,
) -> None:
    """List the artifacts (signatures, SBOMs ...) whose subject is this manifest."""
    options = current()
    t = target(ref, options)
    with open_client(options, t.registry) as client:
        # Resolved even when given as a digest: the referrers API answers an empty list for unknown manifests.
        digest = client.get_manifest_descriptor(t.repository, t.identifier).digest
        found = client.list_referrers(t.repository, digest, artifact_type=artifact_type)
    rows = [descriptor_dict(d) for d in found]
    emit_rows(options, rows, [("digest", "DIGEST"), ("artifactType", "ARTIFACT TYPE"), ("mediaType", "MEDIA TYPE"),
                              ("size", "SIZE")])


def _read_document(file: str) -> bytes:
    """The bytes of FILE (``-``: standard input), refused above the manifest size limit."""
    from ..oci.mediatypes import MAX_MANIFEST_SIZE

    if file == "-":
        body = sys.stdin.buffer.read(MAX_MANIFEST_SIZE + 1)
    else:
        path = Path(file)
        if not path.is_file():
            raise UsageError(f"{file}: no such file" if not path.exists() else f"{file}: not a file")
        with path.open("rb") as handle:
            body = handle.read(MAX_MANIFEST_SIZE + 1)
    if len(body) > MAX_MANIFEST_SIZE:
        raise UsageError(f"{file}: a manifest may be at most {MAX_MANIFEST_SIZE} bytes")
    return body


@command(group, "put", example="dockyard manifest put -r 127.0.0.1:5000 library/hello:v1-file manifest.json\n"
                               "dockyard manifest get -r 127.0.0.1:5000 library/hello:v1 | "
                               "dockyard manifest put -r 127.0.0.1:5000 library/hello:v1-copy -")
def put_manifest(
    ref: Annotated[str, typer.Argument(metavar="REF", help="[REGISTRY/]REPO[:TAG|@DIGEST]; without either, pushed "
                                       "by digest only.", show_default=False)],
    file: Annotated[str, typer.Argument(metavar="FILE", help="The manifest JSON, or - for standard input.")],
    media_type: Annotated[str | None, typer.Option("--media-type", metavar="TYPE",
                                                   help="Media type (default: the document's mediaType).")] = None,
) -> None:
    """Push a manifest document as its exact bytes and print its digest.

    The document is checked first (JSON, the shape of its media type, at most 4 MiB); the registry checks that
    its blobs and child manifests exist.
    """
    from ..oci.digest import compute_digest
    from ..oci.manifest import parse_manifest

    options = current()
    reference = parse_reference(ref, options)
    body = _read_document(file)
    try:
        parsed = parse_manifest(body, media_type)
    except ValueError as exc:
        raise UsageError(f"{file}: {exc}") from None
    digest = compute_digest(body, reference.digest.split(":", 1)[0] if reference.digest else "sha256")
    if reference.digest and reference.digest != digest:
        raise UsageError(f"{file} has digest {digest}, not {reference.digest}")
    with open_client(options, reference.registry) as client:
        pushed = client.upload_manifest(reference.repository, body, tag=reference.tag,
                                        media_type=parsed.media_type)
    name = f"{reference.repository}:{reference.tag}" if reference.tag else f"{reference.repository}@{pushed}"
    if options.json:
        print_json({"reference": name, "digest": pushed, "media_type": parsed.media_type,
                    "manifest_size": len(body)})
    else:
        sys.stdout.write(pushed + "\n")


def register(app: typer.Typer) -> None:
    """Add the ``manifest`` group to ``app``."""
    app.add_typer(group, name="manifest")
