"""``dockyard user add | delete | list``: manage the bcrypt htpasswd file ``dockyard serve --htpasswd`` reads.

A running server re-reads the file when it changes, so these commands take effect without a restart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import CommandError, UsageError
from .options import GlobalOptions, OutputFormat
from .output import emit_rows, report

group = typer.Typer(help="Manage the users of an htpasswd file (bcrypt; htpasswd users are administrators).",
                    no_args_is_help=True,
                    epilog="Example:\n\n  dockyard user add alice --htpasswd ./htpasswd")

Name = Annotated[str, typer.Argument(help="The user name.", show_default=False)]
HtpasswdFile = Annotated[Path, typer.Option("--htpasswd", help="The htpasswd file.", show_default=False)]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json.")]


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: standard input is empty")
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: pipe it in with --password-stdin")
    first = typer.prompt("Password", hide_input=True, err=True)
    if typer.prompt("Password again", hide_input=True, err=True) != first:
        raise UsageError("the passwords do not match")
    return str(first)


def _htpasswd_error(exc: Exception) -> CommandError:
    return CommandError(str(exc))


@group.command("add", epilog="Example:\n\n  echo \"$PASSWORD\" | dockyard user add alice --htpasswd ./htpasswd "
               "--password-stdin")
def add(
    name: Name,
    htpasswd: HtpasswdFile,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input "
                                                 "(else it is asked for twice on the terminal).")] = False,
    output: Output = OutputFormat.table,
) -> None:
    """Add a user, or set an existing user's password (bcrypt). Creates the file (mode 0600) when missing."""
    from ..server.auth.htpasswd import HtpasswdError
    from ..server.auth.userfile import add_user, check_user_name

    check_user_name(name)
    password = _new_password(password_stdin)
    try:
        created = add_user(htpasswd, name, password)
    except HtpasswdError as exc:
        raise _htpasswd_error(exc) from None
    options = GlobalOptions(output=output)
    verb = "added" if created else "changed the password of"
    report(options, {"name": name, "created": created}, f"{verb} user {name} in {htpasswd}")


@group.command("delete", epilog="Example:\n\n  dockyard user delete alice --htpasswd ./htpasswd")
def delete(name: Name, htpasswd: HtpasswdFile, output: Output = OutputFormat.table) -> None:
    """Remove a user (its tokens stop working at once on a running server)."""
    from ..server.auth.htpasswd import HtpasswdError
    from ..server.auth.userfile import delete_user

    try:
        delete_user(htpasswd, name)
    except HtpasswdError as exc:
        raise _htpasswd_error(exc) from None
    except KeyError:
        raise CommandError(f"no user {name!r} in {htpasswd}") from None
    report(GlobalOptions(output=output), {"name": name, "deleted": True}, f"deleted user {name} from {htpasswd}")


@group.command("list", epilog="Example:\n\n  dockyard user list --htpasswd ./htpasswd -o json")
def list_users(htpasswd: HtpasswdFile, output: Output = OutputFormat.table) -> None:
    """List the users of an htpasswd file."""
    from ..server.auth.htpasswd import HtpasswdError
    from ..server.auth.userfile import read_users

    if not htpasswd.exists():
        raise CommandError(f"htpasswd file {htpasswd} does not exist")
    try:
        users = read_users(htpasswd)
    except HtpasswdError as exc:
        raise _htpasswd_error(exc) from None
    rows = [{"name": u.name, "bcrypt_cost": u.cost} for u in users.values()]
    emit_rows(GlobalOptions(output=output), rows, [("name", "USER"), ("bcrypt_cost", "COST")])


def register(app: typer.Typer) -> None:
    """Add the ``user`` command group to the CLI."""
    app.add_typer(group, name="user")
