"""``dockyard push`` and ``dockyard pull``: ORAS-compatible artifacts (files and directories)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .connect import open_client, parse_reference
from .errors import CommandError, UsageError
from .options import command, current
from .output import emit_record, print_json, status
from .progress import transfer_progress

PUSH_EXAMPLE = """
dockyard push -r 127.0.0.1:5000 demo/notes:v1 README.md docs/ --artifact-type application/vnd.example.notes
dockyard push -r 127.0.0.1:5000 demo/notes:v1-sig signature.json --subject v1 --annotation org.example.signer=ci
"""
PULL_EXAMPLE = """
dockyard pull -r 127.0.0.1:5000 demo/notes:v1 --dir ./notes
"""


def parse_annotations(values: list[str]) -> dict[str, str]:
    """``K=V`` strings as a dict (usage error for anything else)."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--annotation {value!r}: expected KEY=VALUE")
        out[key] = val
    return out


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_byte_size(text: str) -> int:
    """``1024``, ``512K``, ``64M``, ``16G`` (also ``16GiB``/``16GB``, powers of 1024) as bytes (usage error else)."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in _SIZE_UNITS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) < 1:
        raise UsageError(f"{text!r}: expected a size such as 512M or 16G")
    return int(number) * _SIZE_UNITS[unit]


def register(app: typer.Typer) -> None:
    """Add ``push`` and ``pull`` to ``app``."""

    @command(app, "push", example=PUSH_EXAMPLE)
    def push(
        ref: Annotated[str, typer.Argument(metavar="REF", help="[REGISTRY/]REPO[:TAG] (tag defaults to latest).")],
        files: Annotated[
            list[str] | None,
            typer.Argument(metavar="FILE...", help="Files or directories (PATH or PATH:MEDIA_TYPE).",
                           show_default=False),
        ] = None,
        artifact_type: Annotated[str | None, typer.Option("--artifact-type", help="The artifactType.")] = None,
        annotation: Annotated[
            list[str] | None, typer.Option("--annotation", "-a", metavar="K=V", help="Manifest annotation; repeatable.")
        ] = None,
        subject: Annotated[
            str | None, typer.Option("--subject", metavar="DIGEST", help="Attach to this manifest (digest or tag).")
        ] = None,
        concurrency: Annotated[int, typer.Option("--concurrency", metavar="N", help="Parallel uploads.")] = 4,
        allow_empty: Annotated[
            bool, typer.Option("--allow-empty", help="Push an artifact without files (annotations only).")
        ] = False,
    ) -> None:
        """Push files and directories as an OCI artifact (what oras push does); directories go as tar+gzip."""
        from ..workflows.artifacts import FileSpec, push_artifact

        options = current()
        reference = parse_reference(ref, options)
        if reference.digest:
            raise UsageError(f"{ref!r}: push to a tag, not a digest")
        annotations = parse_annotations(annotation or [])
        specs = [FileSpec.parse(f) for f in files or []]
        if not specs and not allow_empty:
            raise UsageError("no files to push: name FILE..., or pass --allow-empty to push an artifact without files")
        for spec in specs:
            if not spec.path.exists():
                raise UsageError(f"{spec.path}: no such file or directory")
        tag = reference.tag or "latest"
        with open_client(options, reference.registry) as client, transfer_progress(options) as progress:
            result = push_artifact(
                client, reference.repository, specs, tag=tag, artifact_type=artifact_type,
                annotations=annotations, subject=subject, progress=progress, concurrency=concurrency,
            )
        if options.json:
            print_json(result.to_json())
        else:
            status(options, f"Pushed {reference.repository}:{tag}")
            emit_record(options, {"digest": result.digest, "media_type": result.media_type,
                                  "manifest_size": result.size})

    @command(app, "pull", example=PULL_EXAMPLE)
    def pull(
        ref: Annotated[str, typer.Argument(metavar="REF", help="[REGISTRY/]REPO[:TAG|@DIGEST] (tag: latest).")],
        output_dir: Annotated[
            Path, typer.Option("--dir", "-d", metavar="DIR", help="Directory to write the files to.")
        ] = Path(),
        concurrency: Annotated[int, typer.Option("--concurrency", metavar="N", help="Parallel downloads.")] = 4,
        force: Annotated[
            bool, typer.Option("--force", help="Replace files and directories of the same names in the directory.")
        ] = False,
        max_unpacked_size: Annotated[
            str, typer.Option("--max-unpacked-size", metavar="SIZE",
                              help="Most bytes one directory layer may unpack to (K, M, G suffixes).")
        ] = "16G",
    ) -> None:
        """Pull an artifact's files (named by their title annotation); packed directories are unpacked.

        Each layer writes only DIR/<title>; a name that exists in DIR already is refused unless --force.
        A container image has no files to pull: save it with 'dockyard copy REF oci:DIR'.
        """
        from ..workflows.artifacts import NotAnArtifactError, pull_artifact

        options = current()
        reference = parse_reference(ref, options)
        with open_client(options, reference.registry) as client, transfer_progress(options) as progress:
            try:
                result = pull_artifact(
                    client, reference.repository, reference.identifier, output_dir, progress=progress,
                    concurrency=concurrency, force=force, max_unpacked_size=parse_byte_size(max_unpacked_size),
                )
            except NotAnArtifactError as exc:
                raise CommandError(f"{exc}; to save it, run: dockyard copy {ref} oci:DIR") from None
        if options.json:
            print_json(result.to_json())
        else:
            for path in result.files:
                status(options, f"Pulled {path}")
            emit_record(options, {"digest": result.digest, "files": [str(p) for p in result.files]})
