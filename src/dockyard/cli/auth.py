"""``dockyard login`` and ``dockyard logout``: credentials in Docker's ``config.json``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..credentials import docker_config
from .connect import client_options, endpoint_url, registry_host
from .errors import CommandError, UsageError
from .options import command, current
from .output import print_json, status

Registry = Annotated[str, typer.Argument(metavar="REGISTRY", help="host[:port] or http(s)://host[:port].")]


def _verify(url: str, username: str, password: str, transport: dict[str, Any]) -> None:
    """Check the credentials against the registry (a failed login raises ClientAuthenticationError)."""
    from .._sync.client import ContainerRegistryClient
    from ..credentials import BasicCredential

    with ContainerRegistryClient(url, BasicCredential(username, password), **transport) as client:
        verify = getattr(client, "check_credentials", None)
        if callable(verify):
            verify()
        else:
            next(iter(client.list_repository_names(results_per_page=1)), None)


def register(app: typer.Typer) -> None:
    """Add ``login`` and ``logout`` to ``app``."""

    @command(app, "login", example="echo \"$PASSWORD\" | dockyard login 127.0.0.1:5000 -u tester --password-stdin",
             password_prompt=True)
    def login(registry_name: Registry) -> None:
        """Check a user name and password against a registry and store them in Docker's config.json.

        The password comes from standard input with --password-stdin; without it, it is asked for on the
        terminal (not echoed).
        """
        options = current()
        if not options.username:
            raise UsageError("login needs --username (and --password-stdin unless run on a terminal)")
        url = endpoint_url(registry_name, plain_http=options.plain_http)
        password = options.password() or ""
        _verify(url, options.username, password, client_options(options))
        host = registry_host(registry_name)
        docker_config.write_auth(host, options.username, password)
        if options.json:
            config = str(docker_config.default_config_path())
            print_json({"registry": host, "username": options.username, "config": config})
        else:
            status(options, f"Login Succeeded ({host}, credentials in {docker_config.default_config_path()})")

    @command(app, "logout", example="dockyard logout 127.0.0.1:5000")
    def logout(registry_name: Registry) -> None:
        """Remove a registry's credentials from Docker's config.json."""
        options = current()
        host = registry_host(registry_name)
        if not docker_config.remove_auth(host):
            raise CommandError(f"not logged in to {host} (nothing in {docker_config.default_config_path()})")
        if options.json:
            print_json({"registry": host, "removed": True})
        else:
            status(options, f"Removed credentials for {host}")
