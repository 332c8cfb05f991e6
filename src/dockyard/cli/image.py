"""``dockyard image inspect``, ``dockyard digest`` and ``dockyard config``: what an image is, on any registry."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.filesize import decimal

from .connect import open_client
from .copy import parse_platforms
from .options import command, current
from .output import emit_record, emit_rows, print_json, stdout_console
from .refs import target

if TYPE_CHECKING:
    from ..oci.manifest import Platform
    from ..workflows.images import ImageReport, ImageSummary

group = typer.Typer(help="Look into images: platforms, config, layers and sizes.", no_args_is_help=True,
                    epilog="Example:\n\n  dockyard image inspect -r 127.0.0.1:5000 library/hello:v1")

Ref = Annotated[
    str,
    typer.Argument(metavar="REF", help="[REGISTRY/]REPO:TAG or [REGISTRY/]REPO@DIGEST.", show_default=False),
]
PlatformOption = Annotated[
    str | None,
    typer.Option("--platform", metavar="OS/ARCH[/VARIANT]", help="In an index, the image of this platform."),
]


def _platform(value: str | None) -> Platform | None:
    return parse_platforms([value])[0] if value else None


def _size(value: int | None) -> str:
    if value is None:
        return ""
    return decimal(value) if value < 1000 else f"{decimal(value)} ({value} bytes)"


def _words(value: list[str] | None) -> str:
    return "" if value is None else " ".join(value)


def _image_record(image: ImageSummary) -> dict[str, Any]:
    data = image.to_json()
    config = data["config"]
    return {
        "Platform": data["platform"] or "",
        "Manifest": f"{image.digest} ({image.media_type})",
        "Created": data["created"] or "",
        "Entrypoint": _words(config["entrypoint"]),
        "Cmd": _words(config["cmd"]),
        "Env": "\n".join(config["env"]),
        "Labels": "\n".join(f"{k}={v}" for k, v in config["labels"].items()),
        "Working dir": config["working_dir"] or "",
        "User": config["user"] or "",
        "Config": f"{config['digest']} ({config['media_type']}, {decimal(config['size'])})" if config["digest"] else "",
        "Layers": f"{len(image.layers)}, {_size(image.layers_size)}",
        "Image size": _size(image.total_size),
    }


def _print_report(options: Any, report: ImageReport) -> None:
    console = stdout_console()
    head: dict[str, Any] = {
        "Reference": report.reference,
        "Digest": report.digest,
        "Media type": report.media_type,
    }
    if report.artifact_type and report.artifact_type not in (
        "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"
    ):
        head["Artifact type"] = report.artifact_type
    if report.subject:
        head["Subject"] = report.subject
    if report.annotations:
        head["Annotations"] = "\n".join(f"{k}={v}" for k, v in report.annotations.items())
    head["Total size"] = _size(report.total_size)
    head["Referrers"] = report.referrers
    if report.is_index and len(report.images) != 1:
        emit_record(options, head)
        console.print()
        emit_rows(options, [
            {"platform": i.to_json()["platform"] or "", "digest": i.digest, "created": i.to_json()["created"],
             "layers": len(i.layers), "size": decimal(i.total_size)}
            for i in report.images
        ], [("platform", "PLATFORM"), ("digest", "DIGEST"), ("created", "CREATED"), ("layers", "LAYERS"),
            ("size", "SIZE")])
        console.print("\n(--platform OS/ARCH shows one image's config and layers)", markup=False)
        return
    image = report.images[0]
    record = _image_record(image)
    if not report.is_index:
        del record["Manifest"]
    emit_record(options, {**head, **record})
    if image.layers:
        console.print()
        emit_rows(options, [
            {"n": n, "digest": layer.digest, "media_type": layer.media_type, "size": decimal(layer.size)}
            for n, layer in enumerate(image.layers, 1)
        ], [("n", "#"), ("digest", "LAYER DIGEST"), ("media_type", "MEDIA TYPE"), ("size", "SIZE")])


@command(group, "inspect", example="dockyard image inspect -r 127.0.0.1:5000 library/hello:v1\n"
                                   "dockyard image inspect -r 127.0.0.1:5000 library/hello:v1 --platform linux/arm64")
def inspect(ref: Ref, platform: PlatformOption = None) -> None:
    """Show an image's platforms, config, layers, sizes and referrers.

    Platform(s), creation time, config (entrypoint, cmd, env, labels, working dir, user), layers with media
    type and size, total size and referrers count. An index shows one row per platform (every detail with
    -o json, or one platform's with --platform).
    """
    from ..workflows.images import inspect_image

    options = current()
    t = target(ref, options)
    with open_client(options, t.registry) as client:
        report = inspect_image(client, t.repository, t.identifier, platform=_platform(platform))
    if options.json:
        print_json(report.to_json())
    else:
        _print_report(options, report)


def register(app: typer.Typer) -> None:
    """Add the ``image`` group and the ``digest`` and ``config`` commands to ``app``."""
    app.add_typer(group, name="image")

    @command(app, "digest", example="dockyard digest -r 127.0.0.1:5000 library/hello:v1")
    def digest(ref: Ref, platform: PlatformOption = None) -> None:
        """Print the digest of the manifest REF names.

        With --platform, the digest of that platform's image in an index.
        """
        from ..workflows.images import manifest_digest, ref_name

        options = current()
        t = target(ref, options)
        with open_client(options, t.registry) as client:
            found = manifest_digest(client, t.repository, t.identifier, _platform(platform))
        if options.json:
            print_json({"reference": ref_name(t.repository, t.identifier), "digest": found})
        else:
            sys.stdout.write(found + "\n")

    @command(app, "config", example="dockyard config -r 127.0.0.1:5000 library/hello:v1 --platform linux/amd64")
    def config(ref: Ref, platform: PlatformOption = None) -> None:
        """Print an image's config blob as its exact JSON bytes.

        An index needs --platform OS/ARCH unless it lists one image. The output's digest is the config's.
        """
        from ..workflows.images import image_config

        options = current()
        t = target(ref, options)
        with open_client(options, t.registry) as client:
            body = image_config(client, t.repository, t.identifier, _platform(platform))
        out = sys.stdout.buffer
        out.write(body)
        if not body.endswith(b"\n") and sys.stdout.isatty():
            out.write(b"\n")
        out.flush()
