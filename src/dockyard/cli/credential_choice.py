"""Which credential a command uses: a pure decision from the flags, the environment, the docker config and
the registry host (nothing here reads files, imports azure or touches the network).

Precedence, first that applies wins:

1. ``--username`` with ``--password-stdin``;
2. ``DOCKYARD_ENTRA_ID=1``: an Entra ID credential for any host (ACR behind a custom domain, a test registry);
3. the docker config (``dockyard login``, ``docker login``, credential helpers) has an entry for the host;
4. an Entra ID credential for ACR hosts (``*.azurecr.io`` and the sovereign clouds' suffixes) when
   azure-identity is installed, unless ``DOCKYARD_ENTRA_ID=0``;
5. anonymous.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ..oci.hosts import hostname
from .errors import UsageError

#: ``1``/``0`` (also true/false, yes/no, on/off): always / never use an Entra ID credential.
ENTRA_ENV = "DOCKYARD_ENTRA_ID"
#: Hosts of Azure Container Registry in the public and sovereign clouds.
ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")

_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}


class CredentialSource(str, enum.Enum):
    """Where a command's credential comes from."""

    arguments = "arguments"
    docker_config = "docker-config"
    entra_id = "entra-id"
    anonymous = "anonymous"


def is_acr_host(host: str) -> bool:
    """True for an Azure Container Registry login server (with or without a port)."""
    return hostname(host).endswith(ACR_SUFFIXES)


def entra_setting(env: Mapping[str, str]) -> bool | None:
    """``DOCKYARD_ENTRA_ID`` as True/False, ``None`` when unset or empty; a usage error for anything else."""
    value = env.get(ENTRA_ENV, "").strip().lower()
    if not value:
        return None
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise UsageError(f"{ENTRA_ENV}={env[ENTRA_ENV]!r}: expected 1 or 0")


def choose_credential(
    host: str,
    *,
    username: str | None,
    env: Mapping[str, str],
    in_docker_config: bool,
    azure_identity: bool,
) -> CredentialSource:
    """The credential source for ``host`` (``host[:port]``); see the module docstring for the order.

    ``in_docker_config``: the docker config has credentials for ``host``; ``azure_identity``: the package
    is importable. Forcing Entra ID without azure-identity is a usage error.
    """
    if username:
        return CredentialSource.arguments
    setting = entra_setting(env)
    if setting and not azure_identity:
        raise UsageError(f"{ENTRA_ENV}=1 needs azure-identity: pip install 'dockyard[azure]'")
    if setting:
        return CredentialSource.entra_id
    if in_docker_config:
        return CredentialSource.docker_config
    if setting is None and azure_identity and is_acr_host(host):
        return CredentialSource.entra_id
    return CredentialSource.anonymous
