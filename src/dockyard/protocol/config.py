"""Client construction shared by the sync and async clients: options into a session and transport settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..credentials import DEFAULT_AUDIENCE
from .operations import Operations
from .retry import RetryPolicy
from .session import Session

#: Options the original SDK forwards to azure-core that dockyard accepts and ignores.
IGNORED_OPTIONS = ("enforce_https", "logging_enable", "user_agent", "credential_scopes", "connection_timeout")

USER_AGENT = "dockyard-python"


@dataclass
class ClientConfig:
    """Everything a client needs: the protocol objects and the transport settings for its driver."""

    session: Session
    operations: Operations
    timeout: float
    http2: bool
    max_concurrency: int
    transport: Any = None
    verify: Any = True
    headers: dict[str, str] = field(default_factory=dict)


def build_config(
    endpoint: str,
    credential: Any = None,
    *,
    audience: str = DEFAULT_AUDIENCE,
    api_version: str | None = None,
    max_concurrency: int = 4,
    timeout: float = 60.0,
    retry_total: int = 5,
    http2: bool = False,
    allow_insecure_credentials: bool = False,
    transport: Any = None,
    **kwargs: Any,
) -> ClientConfig:
    """Validate the constructor arguments of either client and build its protocol state."""
    if not endpoint:
        raise ValueError("endpoint is required")
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    session = Session(
        endpoint,
        credential,
        audience=audience,
        retry=RetryPolicy(total=retry_total),
        allow_insecure_credentials=allow_insecure_credentials,
    )
    headers = {"User-Agent": kwargs.pop("user_agent", None) or USER_AGENT}
    extra = kwargs.pop("headers", None)
    if isinstance(extra, dict):
        headers.update(extra)
    return ClientConfig(
        session=session,
        operations=Operations(session, api_version),
        timeout=float(kwargs.pop("read_timeout", timeout)),
        http2=http2,
        max_concurrency=max_concurrency,
        transport=transport,
        verify=kwargs.pop("connection_verify", True),
        headers=headers,
    )
