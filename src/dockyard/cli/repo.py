"""``dockyard repo list | show | update | delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from .connect import open_client
from .locks import LockOptions, update_locks, with_lock_options
from .options import command, current
from .output import emit_rows, report, repository_dict, show_properties
from .refs import repository_target

group = typer.Typer(help="List, inspect, lock and delete repositories.", no_args_is_help=True,
                    epilog="Example:\n\n  dockyard repo list -r 127.0.0.1:5000")

Repository = Annotated[
    str, typer.Argument(help="[REGISTRY/]REPOSITORY, e.g. library/hello.", show_default=False)
]


@command(group, "list", example="dockyard repo list -r 127.0.0.1:5000")
def list_repositories() -> None:
    """List the repositories of the registry."""
    options = current()
    with open_client(options) as client:
        names = list(client.list_repository_names())
    emit_rows(options, [{"name": n} for n in names], [("name", "REPOSITORY")])


@command(group, "show", example="dockyard repo show -r 127.0.0.1:5000 library/hello")
def show_repository(repository: Repository) -> None:
    """Show a repository's properties: counts, times and locks."""
    options = current()
    registry, name = repository_target(repository, options)
    show_properties(options, registry, lambda client: client.get_repository_properties(name), repository_dict)


@command(group, "update", example="dockyard repo update -r 127.0.0.1:5000 library/hello --delete-enabled false")
@with_lock_options
def update_repository(repository: Repository, locks: LockOptions) -> None:
    """Lock or unlock a repository (deletes, writes, reads, listing)."""
    options = current()
    registry, name = repository_target(repository, options)
    update_locks(
        options,
        registry,
        lambda client, **changes: client.update_repository_properties(name, **changes),
        repository_dict,
        locks,
    )


@command(group, "delete", example="dockyard repo delete -r 127.0.0.1:5000 library/hello")
def delete_repository(repository: Repository) -> None:
    """Delete a repository with all its tags and manifests."""
    options = current()
    registry, name = repository_target(repository, options)
    with open_client(options, registry) as client:
        client.get_repository_properties(name)  # an unknown repository is an error, not a silent no-op
        client.delete_repository(name)
    report(options, {"deleted": name}, f"Deleted repository {name}")


def register(app: typer.Typer) -> None:
    """Add the ``repo`` group to ``app``."""
    app.add_typer(group, name="repo")
