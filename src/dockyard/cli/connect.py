"""From command-line options to a connected client: registry URL, credentials, references."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..oci import hosts
from ..oci.reference import InvalidReferenceError, Reference
from .credential_choice import CredentialSource, choose_credential, entra_setting
from .errors import UsageError
from .options import GlobalOptions

if TYPE_CHECKING:
    from .._sync.client import ContainerRegistryClient


def endpoint_url(registry: str, *, plain_http: bool = False) -> str:
    """The registry URL (see :func:`dockyard.oci.hosts.parse_endpoint`); a usage error when malformed."""
    try:
        return hosts.endpoint_url(registry, plain_http=plain_http)
    except hosts.InvalidEndpointError as exc:
        raise UsageError(str(exc)) from None


def registry_host(registry: str) -> str:
    """``host[:port]`` of a registry written as a host or a URL; a usage error when malformed."""
    try:
        return hosts.registry_host(registry)
    except hosts.InvalidEndpointError as exc:
        raise UsageError(str(exc)) from None


def require_registry(options: GlobalOptions, registry: str | None = None) -> str:
    """The registry URL of this command: ``registry`` (from a reference), else ``--registry`` and its env vars."""
    chosen = registry or options.registry
    if not chosen:
        raise UsageError(
            "no registry given: pass --registry/-r (or set DOCKYARD_REGISTRY or AZURE_CONTAINERREGISTRY_ENDPOINT)"
        )
    return endpoint_url(chosen, plain_http=options.plain_http)


def client_options(options: GlobalOptions) -> dict[str, Any]:
    """The SDK constructor's transport keywords for this command's TLS and plain-HTTP options."""
    verify: bool | str = True
    if options.insecure:
        verify = False
    elif options.ca_file is not None:
        if not options.ca_file.is_file():
            raise UsageError(f"--ca-file {options.ca_file}: no such file")
        verify = str(options.ca_file)
    return {"connection_verify": verify, "allow_insecure_credentials": options.allow_insecure_credentials}


def azure_identity_installed() -> bool:
    """True when azure-identity can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("azure.identity") is not None
    except (ImportError, ValueError):
        return False


def _default_azure_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def credential_for(
    options: GlobalOptions,
    url: str,
    *,
    env: Mapping[str, str] | None = None,
    entra_credential: Callable[[], Any] = _default_azure_credential,
    azure_identity: bool | None = None,
) -> Any:
    """The credential for ``url``, chosen by :func:`~dockyard.cli.credential_choice.choose_credential` from the
    options, ``env`` (default: the process environment), the docker config and the host. ``entra_credential``
    makes the Entra ID credential (azure-identity's ``DefaultAzureCredential``); ``azure_identity`` says whether
    it can (default: whether azure-identity is installed)."""
    from ..credentials import BasicCredential, DockerConfigCredential, docker_config

    env = os.environ if env is None else env
    host = hosts.registry_host(url)
    in_docker_config = False
    if not options.username and not entra_setting(env):  # credential helpers run only when the answer matters
        try:
            in_docker_config = docker_config.lookup(host) is not None
        except ValueError as exc:
            raise UsageError(f"unreadable docker config {docker_config.default_config_path()}: {exc}") from None
    source = choose_credential(host, username=options.username, env=env, in_docker_config=in_docker_config,
                               azure_identity=azure_identity_installed() if azure_identity is None else azure_identity)
    if source is CredentialSource.arguments:
        return BasicCredential(options.username or "", options.password() or "")
    if source is CredentialSource.docker_config:
        return DockerConfigCredential()
    if source is CredentialSource.entra_id:
        return entra_credential()
    return None


def open_client(options: GlobalOptions, registry: str | None = None) -> ContainerRegistryClient:
    """A client for this command's registry with this command's credentials."""
    from .._sync.client import ContainerRegistryClient

    url = require_registry(options, registry)
    return ContainerRegistryClient(url, credential_for(options, url), **client_options(options))


def parse_reference(text: str, options: GlobalOptions, *, need_tag_or_digest: bool = False) -> Reference:
    """Parse ``[registry/]repo[:tag][@digest]``; without a registry part, ``--registry`` applies."""
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as exc:
        raise UsageError(str(exc)) from None
    if need_tag_or_digest and not (ref.tag or ref.digest):
        raise UsageError(f"{text!r}: expected REPOSITORY:TAG or REPOSITORY@DIGEST")
    return ref
