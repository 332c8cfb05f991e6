"""Client construction shared by the sync and async clients: constructor options into the protocol state and
the transport settings (one TLS context, proxies, pool limits) of the driver."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..protocol.operations import Operations
from ..protocol.retry import RetryPolicy
from ..protocol.session import DEFAULT_MAX_PAGES, Session
from .tls import tls_context

#: Options the original SDK forwards to azure-core that dockyard accepts and ignores.
IGNORED_OPTIONS = ("enforce_https", "credential_scopes", "connection_timeout")

def proxy_patterns(proxies: Mapping[str, str] | None) -> dict[str, str | None]:
    """azure-core's ``proxies`` (``{"http": URL, "https": URL}``, keys also ``all`` or ``scheme://host``, and
    requests' ``no_proxy``: hosts that bypass them) as httpx URL patterns (``None``: no proxy)."""
    patterns: dict[str, str | None] = {}
    for key, url in (proxies or {}).items():
        if not url:
            continue
        if key.lower() == "no_proxy":
            for host in (h.strip() for h in url.split(",")):
                if host:
                    patterns[f"all://{host}"] = None
            continue
        pattern = key if "://" in key else f"{key}://"
        patterns[pattern] = url if "://" in url else f"http://{url}"
    return patterns


def environment_proxy_patterns() -> dict[str, str | None]:
    """The ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` variables as httpx URL patterns, read as
    ``httpx.Client`` reads them (it ignores them once given a transport); the standard library's reading when a
    later httpx no longer has that function."""
    try:
        from httpx._utils import get_environment_proxies
    except ImportError:  # pragma: no cover - depends on the installed httpx
        import urllib.request

        found = urllib.request.getproxies_environment()
        return proxy_patterns({("no_proxy" if key == "no" else key): url for key, url in found.items()})
    return dict(get_environment_proxies())


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
    #: The one TLS context (verification on or off) of httpx and the raw range reader.
    verify: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    headers: dict[str, str] = field(default_factory=dict)
    #: httpx URL pattern -> proxy URL (``None``: no proxy), from the ``proxies`` option.
    proxies: dict[str, str | None] = field(default_factory=dict)
    #: Whether ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` apply (never with a custom transport).
    trust_env: bool = True
    #: ``logging_enable``: log each request's and response's headers (see :mod:`dockyard.transport.httplog`).
    logging_enable: bool = False

    def httpx_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient`` (``asynchronous``): pooled, with the
        ``proxies`` option, else (unless a custom transport is given) the proxy variables of the environment.
        The sync client's pools are one per thread (:mod:`dockyard.transport.perthread`); a custom transport is
        used as given."""
        import httpx

        from .perthread import PerThreadTransport

        pool = max(10, self.max_concurrency * 2)
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        # The sync client without a transport of the user's: a pool per thread, for direct and proxied requests.
        per_thread = not asynchronous and self.transport is None

        def transport_for(proxy: str | None) -> Any:
            if per_thread:
                return PerThreadTransport(
                    lambda: httpx.HTTPTransport(proxy=proxy, verify=self.verify, http2=self.http2, limits=limits)
                )
            kind = httpx.AsyncHTTPTransport if asynchronous else httpx.HTTPTransport
            return kind(proxy=proxy, verify=self.verify, http2=self.http2, limits=limits)

        patterns = self.proxies
        transport = self.transport
        if per_thread:
            # httpx.Client reads the environment's proxies only when it makes its own transport: read them here.
            patterns = patterns or (environment_proxy_patterns() if self.trust_env else {})
            transport = transport_for(None)
            # The constructing thread's pool is made now, as httpx.Client makes its transport: building one costs
            # ~20 ms (TLS and pool set-up), which belongs to the client's construction, not to its first request.
            transport.for_this_thread()
        mounts = {pattern: None if url is None else transport_for(url) for pattern, url in patterns.items()}
        return {
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0)),
            "http2": self.http2,
            "transport": transport,
            "mounts": mounts or None,
            "verify": self.verify,
            "headers": self.headers,
            "limits": limits,
            # Given proxies win over the environment's, NO_PROXY included: requests (azure-core's transport) uses
            # them for every host; only their own ``no_proxy`` key exempts hosts.
            "trust_env": self.trust_env and not self.proxies,
        }

    def uses_proxy(self, url: str) -> bool:
        """True when requests to ``url`` may go through a proxy (given, or from the environment)."""
        import urllib.request
        from urllib.parse import urlsplit

        if self.proxies:
            return any(url is not None for url in self.proxies.values())
        if not self.trust_env:
            return False
        scheme = urlsplit(url).scheme
        found = urllib.request.getproxies_environment()
        if not (found.get(scheme) or found.get("all")):
            return False
        return not urllib.request.proxy_bypass(urlsplit(url).netloc)


def require_h2() -> None:
    """``http2=True`` needs the ``h2`` package (the ``http2`` extra): say how to get it, before any request."""
    try:
        import h2  # noqa: F401
    except ImportError:
        raise ImportError("http2=True needs the h2 package: pip install 'dockyard[http2]'") from None


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
    options); those that map onto ours are used (``connection_verify``, ``proxies``, ``logging_enable``,
    ``headers``, ``user_agent``, ``read_timeout``), the rest ignored.
    """
    if not endpoint:
        raise ValueError("endpoint is required")
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    if http2:
        require_h2()
    session = Session(
        endpoint,
        credential,
        audience=audience,
        retry=RetryPolicy(total=retry_total),
        allow_insecure_credentials=allow_insecure_credentials,
        max_pages=max_pages,
    )
    trust_env = transport is None and bool(options.get("trust_env", True))
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
        verify=tls_context(options.get("connection_verify", True), trust_env=trust_env),
        headers=headers,
        proxies=proxy_patterns(options.get("proxies")),
        trust_env=trust_env,
        logging_enable=bool(options.get("logging_enable", False)),
    )
