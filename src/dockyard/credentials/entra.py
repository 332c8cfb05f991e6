"""Microsoft Entra ID (Azure AD) credentials: any object with ``get_token(*scopes)``.

azure-identity's credentials (``DefaultAzureCredential`` and friends, sync or async) fit; nothing here
imports azure. The token they return is exchanged for an ACR refresh token at ``/oauth2/exchange``.
"""

from __future__ import annotations

from typing import Any

DEFAULT_AUDIENCE = "https://containerregistry.azure.net"


def is_token_credential(credential: Any) -> bool:
    """True for an object that looks like an azure-core ``TokenCredential`` (sync or async)."""
    return callable(getattr(credential, "get_token", None))


def aad_scope(audience: str | None) -> str:
    """The Entra ID scope for ``audience``: ``<audience>/.default``."""
    return (audience or DEFAULT_AUDIENCE).rstrip("/") + "/.default"


def token_text(result: Any) -> str:
    """The token string of what ``get_token`` returned (an ``AccessToken``, a tuple or a plain string)."""
    if isinstance(result, str):
        return result
    token = getattr(result, "token", None)
    if token is None and isinstance(result, tuple) and result:
        token = result[0]
    if not isinstance(token, str):
        raise TypeError(f"get_token returned {type(result).__name__}, expected an AccessToken")
    return token
