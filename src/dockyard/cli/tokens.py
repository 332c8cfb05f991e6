"""``dockyard token …`` and ``dockyard scope-map …``: repository-scoped tokens (ACR's model) in a registry's data
directory. They work on the data directory directly, also while ``dockyard serve`` runs (SQLite in WAL mode);
the server sees every change on the next request."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .errors import CommandError, UsageError
from .options import GlobalOptions, MetadataUrl, OutputFormat
from .output import emit_record, emit_rows, print_json, report, stdout_console

if TYPE_CHECKING:
    from ..server.auth.accounts import TokenAdmin
    from ..server.storage.records import Rules, ScopeMapRecord, TokenRecord

tokens = typer.Typer(help="Manage repository-scoped tokens (ACR's model): NAME and password log in anywhere a "
                     "user does, with only the actions their scopes grant.", no_args_is_help=True,
                     epilog="Example:\n\n  dockyard token create ci --scope 'team/*:content/read,content/write'")
scope_maps = typer.Typer(help="Manage scope maps: named sets of PATTERN:ACTION[,ACTION] rules tokens can use.",
                         no_args_is_help=True,
                         epilog="Example:\n\n  dockyard scope-map create readers "
                         "--scope 'team/*:content/read,metadata/read'")

Name = Annotated[str, typer.Argument(help="The name.", show_default=False)]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="The registry's data directory (default: as for "
                                              "dockyard serve).", show_default=False)]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json.")]
Scopes = Annotated[list[str] | None, typer.Option(
    "--scope", metavar="PATTERN:ACTION[,ACTION]",
    help="Repository (or prefix ending in /*) and actions: content/read, content/write, content/delete, "
    "metadata/read, metadata/write. Repeatable.", show_default=False)]
ScopeMap = Annotated[str | None, typer.Option("--scope-map", metavar="MAP", help="Use this scope map's rules "
                                              "(e.g. the built-in _repositories_pull).", show_default=False)]
ExpiresIn = Annotated[float | None, typer.Option("--expires-in", metavar="DAYS", min=0.0,
                                                 help="Days until the token stops working.", show_default=False)]


@contextlib.contextmanager
def _admin(data_dir: Path | None, metadata_url: str | None = None) -> Iterator[TokenAdmin]:
    from ..server.auth.accounts import AccountError, TokenAdmin
    from ..server.storage.schema import SchemaError
    from ..server.storage.stores import MetadataUrlError, open_metadata
    from .serve import _data_dir

    try:
        store = open_metadata(metadata_url, _data_dir(data_dir))
    except (SchemaError, MetadataUrlError) as exc:
        raise CommandError(str(exc)) from None
    try:
        yield TokenAdmin(store)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()


def _hidden_password(url: str) -> str:
    from .serve_config import MASK, URL_PASSWORD

    return URL_PASSWORD.sub(rf"\g<1>{MASK}@", url)


def _rules(scopes: list[str] | None) -> Rules:
    from ..server.auth.rights import merge_rules, parse_rule

    try:
        return merge_rules([parse_rule(text) for text in scopes or []])
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _time(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scopes(rules: Rules) -> list[str]:
    return [f"{pattern}:{','.join(actions)}" for pattern, actions in rules]


def _token_dict(token: TokenRecord) -> dict[str, Any]:
    return {
        "name": token.name,
        "status": "enabled" if token.enabled else "disabled",
        "scope_map": token.scope_map,
        "scopes": _scopes(token.rules),
        "expires": _time(token.expires),
        "created": _time(token.created),
    }


def _map_dict(scope_map: ScopeMapRecord) -> dict[str, Any]:
    return {"name": scope_map.name, "description": scope_map.description, "scopes": _scopes(scope_map.rules),
            "built_in": scope_map.name.startswith("_")}


_TOKEN_COLUMNS = [("name", "TOKEN"), ("status", "STATUS"), ("scope_map", "SCOPE MAP"), ("scopes", "SCOPES"),
                  ("expires", "EXPIRES")]


# -- tokens ---------------------------------------------------------------------------------------------------------


@tokens.command("create", epilog="Example:\n\n  dockyard token create ci --scope 'team/*:content/read,content/write' "
                "--expires-in 30 -o json\n\n  dockyard token create puller --scope-map _repositories_pull")
def create_token(name: Name, scope: Scopes = None, scope_map: ScopeMap = None, expires_in: ExpiresIn = None,
                 data_dir: DataDir = None,
                 metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Create a token and print its password (shown this once; only its hash is stored)."""
    rules = _rules(scope)
    with _admin(data_dir, metadata_url) as admin:
        token, password = admin.create_token(name, rules, scope_map, expires_in)
    if output is OutputFormat.json:
        print_json({"name": token.name, "password": password})
        return
    from .serve import _data_dir

    where = _hidden_password(metadata_url) if metadata_url else _data_dir(data_dir)
    stdout_console().print(f"token {token.name} created in {where}; its password (shown only now):\n"
                           f"{password}", markup=False, highlight=False)


@tokens.command("list", epilog="Example:\n\n  dockyard token list -o json")
def list_tokens(data_dir: DataDir = None,
                metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """List the tokens."""
    with _admin(data_dir, metadata_url) as admin:
        rows = [_token_dict(t) for t in admin.tokens()]
    emit_rows(GlobalOptions(output=output), rows, _TOKEN_COLUMNS)


@tokens.command("show", epilog="Example:\n\n  dockyard token show ci")
def show_token(name: Name, data_dir: DataDir = None,
               metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Show a token (never its password)."""
    with _admin(data_dir, metadata_url) as admin:
        emit_record(GlobalOptions(output=output), _token_dict(admin.token(name)))


@tokens.command("update", epilog="Example:\n\n  dockyard token update ci --scope 'team/app:content/read'")
def update_token(
    name: Name, scope: Scopes = None, scope_map: ScopeMap = None, expires_in: ExpiresIn = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="The token never expires.")] = False,
    data_dir: DataDir = None, metadata_url: MetadataUrl = None, output: Output = OutputFormat.table,
) -> None:
    """Replace a token's scopes or scope map, or its expiry. Tokens minted from it earlier stop working."""
    rules = _rules(scope)
    if not (rules or scope_map or expires_in is not None or no_expiry):
        raise UsageError("nothing to change: give --scope, --scope-map, --expires-in or --no-expiry")
    with _admin(data_dir, metadata_url) as admin:
        token = admin.update_token(name, rules=rules, scope_map=scope_map, expires_in_days=expires_in,
                                   never_expires=no_expiry)
    report(GlobalOptions(output=output), _token_dict(token), f"updated token {name}")


def _set_enabled(name: str, enabled: bool, data_dir: Path | None, metadata_url: str | None,
                 output: OutputFormat) -> None:
    with _admin(data_dir, metadata_url) as admin:
        token = admin.update_token(name, enabled=enabled)
    report(GlobalOptions(output=output), _token_dict(token), f"{'enabled' if enabled else 'disabled'} token {name}")


@tokens.command("disable", epilog="Example:\n\n  dockyard token disable ci")
def disable_token(name: Name, data_dir: DataDir = None,
                  metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Disable a token: it and everything minted from it stop working at once."""
    _set_enabled(name, False, data_dir, metadata_url, output)


@tokens.command("enable", epilog="Example:\n\n  dockyard token enable ci")
def enable_token(name: Name, data_dir: DataDir = None,
                 metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Enable a disabled token (its password works again; tokens minted before stay revoked)."""
    _set_enabled(name, True, data_dir, metadata_url, output)


@tokens.command("delete", epilog="Example:\n\n  dockyard token delete ci")
def delete_token(name: Name, data_dir: DataDir = None,
                 metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Delete a token: it and everything minted from it stop working at once."""
    with _admin(data_dir, metadata_url) as admin:
        admin.delete_token(name)
    report(GlobalOptions(output=output), {"name": name, "deleted": True}, f"deleted token {name}")


# -- scope maps -----------------------------------------------------------------------------------------------------

Description = Annotated[str | None, typer.Option("--description", help="What the map is for.", show_default=False)]


@scope_maps.command("create", epilog="Example:\n\n  dockyard scope-map create readers "
                    "--scope 'team/*:content/read,metadata/read' --description 'read the team repositories'")
def create_map(name: Name, scope: Scopes = None, description: Description = None, data_dir: DataDir = None,
               metadata_url: MetadataUrl = None,
               output: Output = OutputFormat.table) -> None:
    """Create a scope map."""
    with _admin(data_dir, metadata_url) as admin:
        record = admin.put_scope_map(name, description or "", _rules(scope), create=True)
    report(GlobalOptions(output=output), _map_dict(record), f"created scope map {name}")


@scope_maps.command("update", epilog="Example:\n\n  dockyard scope-map update readers --scope 'team/*:content/read'")
def update_map(name: Name, scope: Scopes = None, description: Description = None, data_dir: DataDir = None,
               metadata_url: MetadataUrl = None,
               output: Output = OutputFormat.table) -> None:
    """Replace a scope map's rules (and description); tokens using it get the new rules at once."""
    with _admin(data_dir, metadata_url) as admin:
        rules = _rules(scope) or admin.scope_map(name).rules
        record = admin.put_scope_map(name, description, rules, create=False)
    report(GlobalOptions(output=output), _map_dict(record), f"updated scope map {name}")


@scope_maps.command("list", epilog="Example:\n\n  dockyard scope-map list")
def list_maps(data_dir: DataDir = None, metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """List the scope maps (the built-in ones first)."""
    with _admin(data_dir, metadata_url) as admin:
        rows = [_map_dict(m) for m in admin.scope_maps()]
    emit_rows(GlobalOptions(output=output), rows, [("name", "SCOPE MAP"), ("scopes", "SCOPES"),
                                                   ("description", "DESCRIPTION")])


@scope_maps.command("show", epilog="Example:\n\n  dockyard scope-map show _repositories_pull")
def show_map(name: Name, data_dir: DataDir = None,
             metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Show a scope map."""
    with _admin(data_dir, metadata_url) as admin:
        emit_record(GlobalOptions(output=output), _map_dict(admin.scope_map(name)))


@scope_maps.command("delete", epilog="Example:\n\n  dockyard scope-map delete readers")
def delete_map(name: Name, data_dir: DataDir = None,
               metadata_url: MetadataUrl = None, output: Output = OutputFormat.table) -> None:
    """Delete a scope map no token uses."""
    with _admin(data_dir, metadata_url) as admin:
        admin.delete_scope_map(name)
    report(GlobalOptions(output=output), {"name": name, "deleted": True}, f"deleted scope map {name}")


def register(app: typer.Typer) -> None:
    """Add the ``token`` and ``scope-map`` command groups to the CLI."""
    app.add_typer(tokens, name="token")
    app.add_typer(scope_maps, name="scope-map")
