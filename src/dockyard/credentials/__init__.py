"""Where registry credentials come from.

- ``None``: anonymous (the registry's anonymous token flow, when it has one).
- :class:`BasicCredential`: user name and password (htpasswd, ACR admin user, ACR tokens).
- :class:`DockerConfigCredential`: what ``docker login`` / ``dockyard login`` stored.
- Any object with ``get_token(*scopes)`` (azure-identity): Entra ID, exchanged at ``/oauth2/exchange``.
"""

from .basic import BasicCredential, DockerConfigCredential
from .entra import DEFAULT_AUDIENCE, aad_scope, is_token_credential, token_text

__all__ = [
    "DEFAULT_AUDIENCE",
    "BasicCredential",
    "DockerConfigCredential",
    "aad_scope",
    "is_token_credential",
    "token_text",
]
