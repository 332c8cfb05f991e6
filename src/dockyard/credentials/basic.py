"""User name and password credentials: htpasswd registries, ACR admin users and ACR repository tokens."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from . import docker_config


@dataclass(frozen=True)
class BasicCredential:
    """A user name and password (or ACR token name and secret).

    The client sends them as HTTP Basic auth when the registry asks for it, and trades them for bearer
    tokens when the registry runs a token service.
    """

    username: str
    password: str = field(repr=False)

    @property
    def is_identity_token(self) -> bool:
        """True when ``password`` is an identity (refresh) token from ``docker login`` rather than a password."""
        return self.username == docker_config.IDENTITY_TOKEN_USERNAME

    def basic_header(self) -> str:
        """The ``Authorization`` header value for HTTP Basic auth."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


class DockerConfigCredential:
    """Credentials looked up in Docker's ``config.json`` (``auths``, ``credsStore``, ``credHelpers``).

    The lookup happens once per registry host, on the first request that needs credentials.
    """

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._cache: dict[str, BasicCredential | None] = {}

    def resolve(self, registry: str) -> BasicCredential | None:
        """The credential stored for ``registry`` (a host or URL), or ``None``."""
        host = docker_config.normalize_registry(registry)
        if host not in self._cache:
            found = docker_config.lookup(host, self.config_path)
            self._cache[host] = BasicCredential(*found) if found else None
        return self._cache[host]

    def __repr__(self) -> str:
        return f"DockerConfigCredential(config_path={self.config_path!r})"
