"""``dockyard blob get | put | delete``: single blobs by digest, on any registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import errors
from .connect import open_client, parse_reference
from .errors import UsageError
from .options import command, current
from .output import print_json, report
from .refs import repository_target
from .repo import Repository

group = typer.Typer(help="Download, upload and delete blobs by digest.", no_args_is_help=True,
                    epilog="Example:\n\n  dockyard blob put -r 127.0.0.1:5000 library/hello README.md")

BlobRef = Annotated[
    str, typer.Argument(metavar="REPO@DIGEST", help="[REGISTRY/]REPO@sha256:…", show_default=False)
]


def _blob_target(text: str) -> tuple[str | None, str, str]:
    """``(registry or None, repository, digest)`` of a ``[REGISTRY/]REPO@DIGEST`` argument."""
    ref = parse_reference(text, current())
    if not ref.digest or ref.tag:
        raise UsageError(f"{text!r}: expected REPOSITORY@DIGEST")
    return ref.registry, ref.repository, ref.digest


@command(group, "get", example="dockyard blob get -r 127.0.0.1:5000 "
                               "library/hello@$(dockyard blob put -r 127.0.0.1:5000 library/hello README.md) "
                               "-O README.copy")
def get_blob(
    ref: BlobRef,
    output_file: Annotated[
        str, typer.Option("--output-file", "-O", metavar="FILE", help="Write to FILE; - is standard output.")
    ] = "-",
) -> None:
    """Download a blob, verified against its digest.

    A file is written whole or not at all; on standard output a mismatch is reported after the bytes, with a
    non-zero exit.
    """
    options = current()
    registry, repository, digest = _blob_target(ref)
    with open_client(options, registry) as client:
        if output_file == "-":
            out = sys.stdout.buffer
            for chunk in client.download_blob(repository, digest):
                out.write(chunk)
            out.flush()
            return
        size = client.download_blob_to_file(repository, digest, Path(output_file))
    report(options, {"digest": digest, "size": size, "path": output_file},
           f"Wrote {size} bytes of {digest} to {output_file}")


@command(group, "put", example="dockyard blob put -r 127.0.0.1:5000 library/hello README.md")
def put_blob(
    repository: Repository,
    file: Annotated[str, typer.Argument(metavar="FILE", help="The file to upload, or - for standard input.")],
) -> None:
    """Upload a file as a blob and print its digest."""
    options = current()
    registry, name = repository_target(repository, options)
    if file != "-" and not Path(file).is_file():
        raise UsageError(f"{file}: no such file" if not Path(file).exists() else f"{file}: not a file")
    with open_client(options, registry) as client:
        if file == "-":
            digest, size = client.upload_blob(name, sys.stdin.buffer)
        else:
            digest, size = client.upload_blob(name, Path(file))
    if options.json:
        print_json({"repository": name, "digest": digest, "size": size})
    else:
        sys.stdout.write(digest + "\n")


@command(group, "delete", example="dockyard blob delete -r 127.0.0.1:5000 "
                                  "library/hello@$(dockyard blob put -r 127.0.0.1:5000 library/hello README.md)")
def delete_blob(ref: BlobRef) -> None:
    """Delete a blob from a repository (registries may refuse blobs that manifests still use)."""
    options = current()
    registry, repository, digest = _blob_target(ref)
    with open_client(options, registry) as client:
        if not client.blob_exists(repository, digest):
            raise errors.ResourceNotFoundError(f"blob {repository}@{digest}", status_code=404)
        client.delete_blob(repository, digest)
    report(options, {"deleted": f"{repository}@{digest}"}, f"Deleted {repository}@{digest}")


def register(app: typer.Typer) -> None:
    """Add the ``blob`` group to ``app``."""
    app.add_typer(group, name="blob")
