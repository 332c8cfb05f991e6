"""What kind of credential a client holds: none, Basic (a username/password or a docker config entry), or one
with ``get_token`` (Entra ID)."""

from __future__ import annotations

from typing import Any

from ..credentials import BasicCredential, DockerConfigCredential, is_token_credential


def check_credential(credential: Any) -> None:
    """Refuse a credential of no known kind with a ``TypeError``."""
    if credential is not None and not (
        isinstance(credential, (BasicCredential, DockerConfigCredential)) or is_token_credential(credential)
    ):
        raise TypeError(
            "credential must be None, a BasicCredential, a DockerConfigCredential or an object with get_token()"
        )


def basic_credential(credential: Any, registry: str) -> BasicCredential | None:
    """The username and password (or identity token) ``credential`` holds for ``registry``, if any."""
    if isinstance(credential, BasicCredential):
        return credential
    if isinstance(credential, DockerConfigCredential):
        return credential.resolve(registry)
    return None


def is_entra(credential: Any) -> bool:
    """True for a ``get_token`` credential, whose Entra ID tokens are exchanged for ACR refresh tokens."""
    return credential is not None and not isinstance(credential, (BasicCredential, DockerConfigCredential))
