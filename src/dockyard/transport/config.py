"""Client construction shared by the sync and async clients: constructor options into the protocol state and
the transport settings (one TLS context, proxies, pool limits) of the driver."""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.operations import Operations
from ..protocol.retry import RetryPolicy
from ..protocol.session import DEFAULT_MAX_PAGES, Session
from .tls import tls_context

if TYPE_CHECKING:
    import httpx

#: Options the original SDK forwards to azure-core that dockyard accepts and ignores.
IGNORED_OPTIONS = ("enforce_https", "credential_scopes", "connection_timeout")

#: The proxy variables httpx takes from the environment (``getproxies()``'s keys; ``no`` is ``NO_PROXY``).
ENVIRONMENT_PROXY_KEYS = ("http", "https", "all")


#: An address range of ``NO_PROXY`` (``10.0.0.0/8``, ``fd00::/8``).
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def no_proxy_pattern(host: str) -> str:
    """One ``NO_PROXY`` entry as the httpx URL pattern that exempts it, in curl's forms as httpx reads them:
    ``example.com`` (the host and its subdomains), ``.example.com`` (its subdomains only), ``localhost``, an IPv4
    or IPv6 address, ``host:port`` (that port only), or a pattern with a scheme (``http://example.com``) as it is.
    (An address range, ``10.0.0.0/8``, is no pattern: see :func:`no_proxy_networks`.)"""

    def is_address(kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> bool:
        try:
            kind(host.split("/")[0])
        except ValueError:
            return False
        return True

    if "://" in host:
        return host
    if is_address(ipaddress.IPv4Address):
        return f"all://{host}"
    if is_address(ipaddress.IPv6Address):
        return f"all://[{host}]"
    if host.lower() == "localhost":
        return f"all://{host}"
    return f"all://*{host}"


def _no_proxy_entries(proxies: Mapping[str, str] | None) -> list[str]:
    """The hosts of a ``proxies`` mapping's ``no_proxy`` key (comma-separated), in order."""
    no_proxy = next((value for key, value in (proxies or {}).items() if key.lower() == "no_proxy" and value), "")
    return [host for host in (entry.strip() for entry in no_proxy.split(",")) if host]


def proxy_patterns(proxies: Mapping[str, str] | None) -> dict[str, str | None]:
    """azure-core's ``proxies`` (``{"http": URL, "https": URL}``, keys also ``all`` or ``scheme://host``, and
    ``no_proxy``: hosts that bypass them) as httpx URL patterns (``None``: no proxy), in the order httpx mounts
    them: the proxies, then the ``no_proxy`` hosts (:func:`no_proxy_pattern`); ``no_proxy`` ``*``: no proxy at all."""
    patterns: dict[str, str | None] = {}
    for key, url in (proxies or {}).items():
        if not url or key.lower() == "no_proxy":
            continue
        pattern = key if "://" in key else f"{key}://"
        patterns[pattern] = url if "://" in url else f"http://{url}"
    for host in _no_proxy_entries(proxies):
        if host == "*":
            return {}
        if _names_a_range(host):
            continue  # an address range (a malformed one is ignored, as requests ignores it): no_proxy_networks
        patterns[no_proxy_pattern(host)] = None
    return patterns


def _names_a_range(host: str) -> bool:
    """Whether a ``NO_PROXY`` entry is written as an address range (``10.0.0.0/8``), well-formed or not."""
    return "/" in host and "://" not in host


def _address_range(host: str) -> Network | None:
    """The address range a ``NO_PROXY`` entry names (``10.0.0.0/8``, ``fd00::/8``), else None."""
    if not _names_a_range(host):
        return None
    try:
        return ipaddress.ip_network(host.strip("[]"), strict=False)
    except ValueError:
        return None


def no_proxy_networks(proxies: Mapping[str, str] | None) -> tuple[Network, ...]:
    """The address ranges among a ``proxies`` mapping's ``no_proxy`` hosts (``10.0.0.0/8``, ``fd00::/8``): a request
    to an address inside one goes direct, as curl and requests (azure-core's transport) send it. A host name is not
    resolved to find out, as in both."""
    found = (_address_range(host) for host in _no_proxy_entries(proxies))
    return tuple(network for network in found if network is not None)


def environment_proxies() -> dict[str, str]:
    """The ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` variables (lower case first, as the standard
    library's ``getproxies`` reads them) as a ``proxies`` mapping (``no_proxy`` for ``NO_PROXY``)."""
    import urllib.request

    found = urllib.request.getproxies()
    given = {key: found[key] for key in ENVIRONMENT_PROXY_KEYS if found.get(key)}
    return {**given, "no_proxy": found.get("no", "")}


def environment_proxy_patterns() -> dict[str, str | None]:
    """The proxy variables as httpx URL patterns: what ``httpx.Client(trust_env=True)`` mounts, but for address
    ranges (which httpx mounts as the range's first address)."""
    return proxy_patterns(environment_proxies())


@dataclass(frozen=True)
class ProxyRoute:
    """One mount of an httpx client: a URL pattern (``all://``, ``https://``, ``all://*example.com:5000``) and
    the proxy its requests go through (``None``: none), matched as httpx matches its mounts."""

    pattern: str
    proxy: str | None
    scheme: str
    host: str
    port: int | None
    host_regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, pattern: str, proxy: str | None) -> ProxyRoute:
        """The route of ``pattern``; ``ValueError`` for a pattern httpx refuses too (a scheme without ``://``)."""
        import httpx

        if pattern and ":" not in pattern:
            raise ValueError(f"proxy keys are URL patterns: {pattern!r} should be {pattern + '://'!r}")
        url = httpx.URL(pattern)
        host = "" if url.host == "*" else url.host
        if not host:
            regex = None
        elif host.startswith("*."):  # subdomains only
            regex = re.compile(rf"^.+\.{re.escape(host[2:])}$")
        elif host.startswith("*"):  # the domain and its subdomains
            regex = re.compile(rf"^(.+\.)?{re.escape(host[1:])}$")
        else:
            regex = re.compile(rf"^{re.escape(host)}$")
        return cls(pattern, proxy, "" if url.scheme == "all" else url.scheme, host, url.port, regex)

    @property
    def priority(self) -> tuple[int, int, int]:
        """httpx's order: patterns with a port first, then longer hosts, then longer schemes."""
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def matches(self, url: httpx.URL) -> bool:
        """Whether requests to ``url`` take this route."""
        if self.scheme and self.scheme != url.scheme:
            return False
        if self.host_regex is not None and not self.host_regex.match(url.host):
            return False
        return self.port is None or self.port == url.port


def proxy_routes(patterns: Mapping[str, str | None]) -> tuple[ProxyRoute, ...]:
    """``patterns`` as httpx orders its mounts: most specific first, ties in the given order."""
    return tuple(sorted((ProxyRoute.parse(pattern, proxy) for pattern, proxy in patterns.items()),
                        key=lambda route: route.priority))


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
    #: httpx URL pattern -> proxy URL (``None``: no proxy): the ``proxies`` option, else (with ``trust_env``) the
    #: proxy variables of the environment as they were when the client was built. The one source of the routes
    #: of httpx's mounts and of :meth:`uses_proxy`.
    proxies: dict[str, str | None] = field(default_factory=dict)
    #: The address ranges of the same ``no_proxy`` (see :meth:`exempt`).
    no_proxy_networks: tuple[Network, ...] = ()
    #: ``logging_enable``: log each request's and response's headers (see :mod:`dockyard.transport.httplog`).
    logging_enable: bool = False
    #: ``proxies`` as httpx orders its mounts, and whether any of them is a proxy.
    _routes: tuple[ProxyRoute, ...] = field(init=False, repr=False)
    _any_proxy: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._routes = proxy_routes(self.proxies)
        self._any_proxy = any(route.proxy is not None for route in self._routes)

    def httpx_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient`` (``asynchronous``): pooled, with a mount
        for each of the ``proxies`` patterns (the option's, else the environment's as read at construction); with
        ``NO_PROXY`` address ranges, each proxy's mount sends the addresses in them direct
        (:mod:`dockyard.transport.exempt`). The sync client's pools are one per thread
        (:mod:`dockyard.transport.perthread`); a custom transport is used as given."""
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

        transport = self.transport
        if per_thread:
            transport = transport_for(None)
            # The constructing thread's pool is made now, as httpx.Client makes its transport: building one costs
            # ~20 ms (TLS and pool set-up), which belongs to the client's construction, not to its first request.
            transport.for_this_thread()
        elif transport is None and self.no_proxy_networks:
            transport = transport_for(None)  # the direct pool, shared with the proxy mounts for exempt addresses

        def mount_for(proxy: str) -> Any:
            proxied = transport_for(proxy)
            if not self.no_proxy_networks:
                return proxied
            from .exempt import AsyncExemptingTransport, ExemptingTransport

            kind = AsyncExemptingTransport if asynchronous else ExemptingTransport
            return kind(proxied, transport, self.exempt)

        mounts = {pattern: None if url is None else mount_for(url) for pattern, url in self.proxies.items()}
        return {
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0)),
            "http2": self.http2,
            "transport": transport,
            "mounts": mounts or None,
            "verify": self.verify,
            "headers": self.headers,
            "limits": limits,
            # The environment was read once, into ``proxies``: httpx must not read it again (and differently).
            "trust_env": False,
        }

    def exempt(self, host: str) -> bool:
        """Whether ``host`` is an address inside one of the ``NO_PROXY`` ranges (it then goes direct, whichever
        proxy pattern matches it)."""
        if not self.no_proxy_networks:
            return False
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.no_proxy_networks)

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to ``url`` goes through (``None``: it goes direct), as the client's mounts route it:
        the proxy of the mount httpx picks, unless the host is :meth:`exempt`."""
        if not self._any_proxy:
            return None
        import httpx

        target = httpx.URL(url)
        if self.exempt(target.host):
            return None
        return next((route.proxy for route in self._routes if route.matches(target)), None)

    def uses_proxy(self, url: str) -> bool:
        """Whether a request to ``url`` goes through a proxy (then the raw range reader leaves it to httpx)."""
        return self.proxy_for(url) is not None


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
    # Given proxies win over the environment's, NO_PROXY included: requests (azure-core's transport) uses them for
    # every host; only their own ``no_proxy`` key exempts hosts. The environment is read here, once.
    given = options.get("proxies")
    chosen = given if given and any(given.values()) else environment_proxies() if trust_env else {}
    proxies = proxy_patterns(chosen)
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
        proxies=proxies,
        no_proxy_networks=no_proxy_networks(chosen) if proxies else (),
        logging_enable=bool(options.get("logging_enable", False)),
    )
