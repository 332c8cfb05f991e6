"""Registry hosts and endpoints: the one place that decides what is loopback and how a registry is written.

Pure (no I/O, no name resolution). A registry may be given as ``host``, ``host:port``, ``[v6]:port`` or
an ``http(s)://`` URL; :func:`parse_endpoint` turns each into scheme, host and port. Without a scheme a
registry is ``https``, except a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``), which is plain
``http`` - the same rule for the SDK and the CLI. Loopback is decided by :mod:`ipaddress` on the literal,
never by a prefix of the name: ``127.attacker.example`` is not loopback.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "Endpoint",
    "InvalidEndpointError",
    "endpoint_url",
    "hostname",
    "is_loopback",
    "is_loopback_url",
    "origin",
    "parse_endpoint",
    "registry_host",
]

#: Ports a scheme uses when the URL names none (dropped when comparing origins).
DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 reg-name characters dockyard accepts in a host name (no userinfo, no percent-escapes).
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")


class InvalidEndpointError(ValueError):
    """A registry that is not ``host[:port]`` or an ``http(s)://host[:port]`` URL."""


@dataclass(frozen=True)
class Endpoint:
    """A registry's scheme, host (lower case, IPv6 without brackets) and port (``None`` when not written)."""

    scheme: str
    host: str
    port: int | None = None

    @property
    def netloc(self) -> str:
        """``host[:port]`` as written in a URL (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``scheme://host[:port]`` (no trailing slash)."""
        return f"{self.scheme}://{self.netloc}"

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` with the scheme's default port left out: equal origins compare equal."""
        if self.port == DEFAULT_PORTS.get(self.scheme):
            return Endpoint(self.scheme, self.host).url
        return self.url

    @property
    def loopback(self) -> bool:
        """True when the host is this machine (see :func:`is_loopback`)."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, an address in ``127.0.0.0/8`` and ``::1`` (a port and brackets are allowed).

    Only literal addresses and the name ``localhost`` count: a name is never resolved, and a name that merely
    starts with ``127.`` is an ordinary remote host.
    """
    name = hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is loopback (see :func:`is_loopback`)."""
    try:
        return is_loopback(urlsplit(url).hostname or "")
    except ValueError:
        return False


def hostname(host: str) -> str:
    """``host`` without port and brackets, lower case (``[::1]:5000`` -> ``::1``, ``a.io:443`` -> ``a.io``)."""
    value = host.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _port(text: str, given: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidEndpointError(f"invalid registry {given!r}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def _host_and_port(authority: str, given: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` / ``[v6][:port]`` / a bare IPv6 literal, validating both parts."""
    if authority.startswith("["):
        inside, sep, rest = authority[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidEndpointError(f"invalid registry {given!r}: unbalanced brackets")
        try:
            address = ipaddress.IPv6Address(inside)
        except ValueError:
            raise InvalidEndpointError(f"invalid registry {given!r}: {inside!r} is not an IPv6 address") from None
        return address.compressed, (_port(rest[1:], given) if rest else None)
    if authority.count(":") > 1:
        try:
            return ipaddress.IPv6Address(authority).compressed, None
        except ValueError:
            raise InvalidEndpointError(
                f"invalid registry {given!r}: write an IPv6 address in brackets, e.g. [::1]:5000"
            ) from None
    host, sep, port_text = authority.partition(":")
    host = host.lower()
    if not _HOST_NAME.fullmatch(host) or ".." in host:
        raise InvalidEndpointError(f"invalid registry {given!r}: expected host[:port] or an http(s):// URL")
    return host, (_port(port_text, given) if sep else None)


def parse_endpoint(registry: str, *, plain_http: bool = False) -> Endpoint:
    """The :class:`Endpoint` of a registry written as ``host[:port]`` or ``http(s)://host[:port][/]``.

    Without a scheme: ``http`` for loopback hosts (and for every host with ``plain_http``), ``https`` for the rest.
    """
    value = registry.strip()
    if not value:
        raise InvalidEndpointError("empty registry")
    if "://" in value:
        scheme, _, rest = value.partition("://")
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise InvalidEndpointError(f"invalid registry URL {registry!r}: the scheme must be http or https")
        authority, _, path = rest.partition("/")
        if path or "?" in authority or "#" in authority or "@" in authority or not authority:
            raise InvalidEndpointError(f"invalid registry URL {registry!r}: expected {scheme}://host[:port]")
        host, port = _host_and_port(authority, registry)
        return Endpoint(scheme, host, port)
    if value.endswith("/"):
        value = value[:-1]
    if any(c in value for c in "/?#@ \t"):
        raise InvalidEndpointError(f"invalid registry {registry!r}: expected host[:port] or an http(s):// URL")
    host, port = _host_and_port(value, registry)
    return Endpoint("http" if plain_http or is_loopback(host) else "https", host, port)


def endpoint_url(registry: str, *, plain_http: bool = False) -> str:
    """``scheme://host[:port]`` of a registry (see :func:`parse_endpoint`)."""
    return parse_endpoint(registry, plain_http=plain_http).url


def registry_host(registry: str) -> str:
    """``host[:port]`` of a registry written as a host or a URL (the key of Docker's ``config.json``)."""
    return parse_endpoint(registry).netloc


def origin(url: str) -> str:
    """``scheme://host[:port]`` of any absolute URL (default port left out), for same-origin checks.

    A URL that cannot be parsed gets an origin of its own (it never equals a registry's).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return f"invalid:{url}"
    scheme = parts.scheme.lower()
    if port == DEFAULT_PORTS.get(scheme):
        port = None
    return Endpoint(scheme, host, port).url
