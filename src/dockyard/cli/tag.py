"""``dockyard tag list | show | add | update | delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..oci.names import validate_tag
from .connect import open_client, parse_reference, require_registry
from .errors import UsageError
from .locks import LockOptions, update_locks, with_lock_options
from .options import GlobalOptions, command, current
from .output import list_properties, print_json, report, show_properties, status, tag_dict
from .refs import OrderBy, Target, Top, repository_target, target
from .repo import Repository

group = typer.Typer(help="List, inspect, add, lock and untag tags.", no_args_is_help=True,
                    epilog="Example:\n\n  dockyard tag list -r 127.0.0.1:5000 library/hello")

TagRef = Annotated[str, typer.Argument(metavar="REPO:TAG", help="A tag, e.g. library/hello:v1.", show_default=False)]

_COLUMNS = [("name", "TAG"), ("digest", "DIGEST"), ("last_updated_on", "UPDATED"), ("can_delete", "DELETE"),
            ("can_write", "WRITE")]


@command(group, "list", example="dockyard tag list -r 127.0.0.1:5000 library/hello --orderby time_desc --top 10")
def list_tags(repository: Repository, orderby: OrderBy = None, top_: Top = None) -> None:
    """List the tags of a repository with digests, times and locks."""
    options = current()
    registry, name = repository_target(repository, options)
    lister = lambda client: client.list_tag_properties  # noqa: E731
    list_properties(options, registry, name, lister, orderby, top_, tag_dict, _COLUMNS)


@command(group, "show", example="dockyard tag show -r 127.0.0.1:5000 library/hello:v1")
def show_tag(ref: TagRef) -> None:
    """Show a tag's properties."""
    options = current()
    t = target(ref, options, tag_only=True)
    show_properties(options, t.registry, lambda client: client.get_tag_properties(t.repository, t.identifier), tag_dict)


@command(group, "update", example="dockyard tag update -r 127.0.0.1:5000 library/hello:v1 --write-enabled false")
@with_lock_options
def update_tag(ref: TagRef, locks: LockOptions) -> None:
    """Lock or unlock a tag."""
    options = current()
    t = target(ref, options, tag_only=True)
    update_locks(
        options,
        t.registry,
        lambda client, **changes: client.update_tag_properties(t.repository, t.identifier, **changes),
        tag_dict,
        locks,
    )


@command(group, "delete", example="dockyard tag delete -r 127.0.0.1:5000 library/hello:v1")
def delete_tag(ref: TagRef) -> None:
    """Untag: remove the tag; the manifest it pointed to stays."""
    options = current()
    t = target(ref, options, tag_only=True)
    with open_client(options, t.registry) as client:
        props = client.get_tag_properties(t.repository, t.identifier)  # unknown tags are an error
        client.delete_tag(t.repository, t.identifier)
    report(
        options,
        {"untagged": f"{t.repository}:{t.identifier}", "digest": props.digest},
        f"Untagged {t.repository}:{t.identifier} (was {props.digest})",
    )


def _new_tag(text: str, source: Target, options: GlobalOptions) -> tuple[str, str]:
    """``(repository, tag)`` of a NEWTAG argument: a bare tag names SRC's repository; ``[REGISTRY/]REPO:TAG``
    another repository, which must be on SRC's registry."""
    if ":" not in text and "/" not in text and "@" not in text:
        try:
            validate_tag(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return source.repository, text
    ref = parse_reference(text, options)
    if ref.digest or not ref.tag:
        raise UsageError(f"{text!r}: expected TAG or [REGISTRY/]REPOSITORY:TAG")
    if require_registry(options, ref.registry) != require_registry(options, source.registry):
        raise UsageError(f"{text!r} is on another registry than the source; use 'dockyard copy' to copy across "
                         "registries")
    return ref.repository, ref.tag


@command(group, "add", example="dockyard tag add -r 127.0.0.1:5000 library/hello:v1 latest stable\n"
                               "dockyard tag add -r 127.0.0.1:5000 library/hello:v1 mirror/hello:v1")
def add_tags(
    source: Annotated[str, typer.Argument(metavar="SRC", help="[REGISTRY/]REPO:TAG or [REGISTRY/]REPO@DIGEST.",
                                          show_default=False)],
    new_tags: Annotated[list[str], typer.Argument(metavar="NEWTAG...", help="TAG (in SRC's repository) or "
                                                  "REPO:TAG (another repository of the same registry).",
                                                  show_default=False)],
) -> None:
    """Point more tags at a manifest, without moving layers.

    In SRC's repository the manifest's exact bytes are pushed under each tag; in another repository of the
    same registry its blobs are mounted there first. Across registries, use dockyard copy.
    """
    from ..workflows import indexes

    options = current()
    t = target(source, options)
    targets = [_new_tag(text, t, options) for text in new_tags]
    with open_client(options, t.registry) as client:
        result = indexes.add_tags(client, require_registry(options, t.registry),
                                  indexes.Source(t.repository, t.identifier), targets)
    if options.json:
        print_json(result.to_json())
        return
    for name in result.tags:
        status(options, f"Tagged {name} -> {result.digest}")


def register(app: typer.Typer) -> None:
    """Add the ``tag`` group to ``app``."""
    app.add_typer(group, name="tag")
