"""Client construction shared by the sync and async clients: options into a session and transport settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .operations import Operations
from .retry import RetryPolicy
from .session import DEFAULT_MAX_PAGES, Session

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

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient`` (pooled, no proxies from the environment)."""
        import httpx

        pool = max(10, self.max_concurrency * 2)
        return {
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0)),
            "http2": self.http2,
            "transport": self.transport,
            "verify": self.verify,
            "headers": self.headers,
            "limits": httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            "trust_env": False,
        }


def build_config(
    endpoint: str,
    credential: Any,
    *,
    audience: str,
    api_version: str | None,
    max_concurrency: int,
    timeout: float,
    retry_total: int,
    http2: bool,
    allow_insecure_credentials: bool,
    transport: Any,
    max_pages: int = DEFAULT_MAX_PAGES,
    options: dict[str, Any],
) -> ClientConfig:
    """Validate the constructor arguments of either client and build its protocol state.

    ``options`` are the extra keyword arguments of the original SDK's constructor (azure-core pipeline
    options); the few that map onto ours are used, the rest ignored.
    """
    if not endpoint:
        raise ValueError("endpoint is required")
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    session = Session(
        endpoint,
        credential,
        audience=audience,
        retry=RetryPolicy(total=retry_total),
        allow_insecure_credentials=allow_insecure_credentials,
        max_pages=max_pages,
    )
    headers = {"User-Agent": options.get("user_agent") or USER_AGENT}
    extra = options.get("headers")
    if isinstance(extra, dict):
        headers.update(extra)
    return ClientConfig(
        session=session,
        operations=Operations(session, api_version, max_concurrency),
        timeout=float(options.get("read_timeout", timeout)),
        http2=http2,
        max_concurrency=max_concurrency,
        transport=transport,
        verify=options.get("connection_verify", True),
        headers=headers,
    )
