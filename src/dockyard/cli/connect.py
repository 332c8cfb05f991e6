"""From command-line options to a connected client: registry URL, credentials, references."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from ..oci.reference import InvalidReferenceError, Reference
from .errors import UsageError
from .options import GlobalOptions

if TYPE_CHECKING:
    from .._sync.client import ContainerRegistryClient


def _hostname(host: str) -> str:
    """``host`` without its port (``[::1]:5000`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (with or without a port)."""
    name = _hostname(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint_url(registry: str) -> str:
    """The registry URL: a full ``http(s)://`` URL as given, else ``http://`` for loopback hosts, ``https://``
    for the rest (``127.0.0.1:5000`` -> ``http://127.0.0.1:5000``, ``myreg.azurecr.io`` -> ``https://…``)."""
    value = registry.strip()
    if not value:
        raise UsageError("empty registry")
    if value.startswith(("http://", "https://")):
        scheme, _, rest = value.partition("://")
        rest = rest[:-1] if rest.endswith("/") else rest
        if not rest or "/" in rest:
            raise UsageError(f"invalid registry URL {registry!r}: expected scheme://host[:port]")
        return f"{scheme}://{rest}"
    if "/" in value or " " in value:
        raise UsageError(f"invalid registry {registry!r}: expected host[:port] or an http(s):// URL")
    return f"{'http' if is_loopback(value) else 'https'}://{value}"


def registry_host(registry: str) -> str:
    """``host[:port]`` of a registry written as a host or a URL."""
    return endpoint_url(registry).split("://", 1)[1]


def require_registry(options: GlobalOptions, registry: str | None = None) -> str:
    """The registry URL of this command: ``registry`` (from a reference), else ``--registry`` and its env vars."""
    chosen = registry or options.registry
    if not chosen:
        raise UsageError(
            "no registry given: pass --registry/-r (or set DOCKYARD_REGISTRY or AZURE_CONTAINERREGISTRY_ENDPOINT)"
        )
    return endpoint_url(chosen)


def _entra_credential(host: str) -> Any:
    """azure-identity's ``DefaultAzureCredential`` for ``*.azurecr.io`` registries, when it is installed."""
    if not _hostname(host).lower().endswith(".azurecr.io"):
        return None
    try:
        from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found]
    except ImportError:
        return None
    return DefaultAzureCredential()


def credential_for(options: GlobalOptions, url: str) -> Any:
    """Credentials, first found wins: ``--username``/``--password-stdin``; the docker config (``dockyard login``,
    credential helpers); Entra ID for ``*.azurecr.io`` when azure-identity is installed; else anonymous."""
    from ..credentials import BasicCredential, DockerConfigCredential, docker_config

    host = url.split("://", 1)[1]
    if options.username:
        return BasicCredential(options.username, options.password() or "")
    try:
        stored = docker_config.lookup(host)
    except ValueError as exc:
        raise UsageError(f"unreadable docker config {docker_config.default_config_path()}: {exc}") from None
    if stored is not None:
        return DockerConfigCredential()
    return _entra_credential(host)


def open_client(options: GlobalOptions, registry: str | None = None) -> ContainerRegistryClient:
    """A client for this command's registry with this command's credentials."""
    from .._sync.client import ContainerRegistryClient

    url = require_registry(options, registry)
    return ContainerRegistryClient(url, credential_for(options, url))


def parse_reference(text: str, options: GlobalOptions, *, need_tag_or_digest: bool = False) -> Reference:
    """Parse ``[registry/]repo[:tag][@digest]``; without a registry part, ``--registry`` applies."""
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as exc:
        raise UsageError(str(exc)) from None
    if need_tag_or_digest and not (ref.tag or ref.digest):
        raise UsageError(f"{text!r}: expected REPOSITORY:TAG or REPOSITORY@DIGEST")
    return ref
