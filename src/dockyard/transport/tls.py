"""The one TLS context of a client, built once and shared by httpx and the raw range reader."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

#: Environment variables naming a CA bundle, in the order azure-core's transport (requests) reads them.
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_context(connection_verify: Any, *, trust_env: bool, env: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """The TLS context for ``connection_verify`` as azure-core reads it: ``False`` skips verification, a path
    (file or directory) or an ``ssl.SSLContext`` is used as given, and ``True`` (the default) means the CA bundle
    named by ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` or ``SSL_CERT_FILE`` (with ``trust_env``), else
    certifi's."""
    if isinstance(connection_verify, ssl.SSLContext):
        return connection_verify
    if connection_verify is False:
        return _unverified()
    path: str | None = None
    if isinstance(connection_verify, (str, os.PathLike)):
        path = os.fspath(connection_verify)
    elif trust_env:
        env = os.environ if env is None else env
        path = next((env[name] for name in CA_BUNDLE_ENV if env.get(name)), None)
    if path is None:
        try:  # requests (azure-core's transport) and httpx both default to certifi's bundle
            import certifi
        except ImportError:  # pragma: no cover - httpx depends on certifi
            return ssl.create_default_context()
        path = certifi.where()
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)
