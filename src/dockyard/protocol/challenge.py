"""``WWW-Authenticate`` challenges and what a request needs: the scope it asks a token service for."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')
_V2_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)(?:/|\Z)")
_ACR_PATH = re.compile(r"^/acr/v1/(.+?)(?:/(_tags|_manifests)(?:/.*)?)?\Z")


@dataclass(frozen=True)
class Challenge:
    """One parsed challenge: ``scheme`` (lower case, ``bearer`` or ``basic``) and its parameters."""

    scheme: str
    realm: str | None = None
    service: str | None = None
    scope: str | None = None
    error: str | None = None


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse a ``WWW-Authenticate`` value.

    Tolerates ``", "`` and ``","`` separators, unquoted values and missing ``service`` / ``scope``
    (where the original SDK raised ``KeyError``). ``None`` when there is no usable challenge.
    """
    if not header:
        return None
    text = header.strip()
    scheme, _, rest = text.partition(" ")
    scheme = scheme.strip().lower()
    if scheme not in ("bearer", "basic"):
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        key = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params.setdefault(key, value.replace('\\"', '"'))
    return Challenge(
        scheme=scheme,
        realm=params.get("realm"),
        service=params.get("service"),
        scope=params.get("scope"),
        error=params.get("error"),
    )


@dataclass(frozen=True)
class RequestKind:
    """What a request does, for scope bookkeeping: an ``action`` class and the repository it touches."""

    action: str
    repository: str | None


def classify(method: str, url: str) -> RequestKind:
    """Classify a registry request (``/v2/...`` or ``/acr/v1/...``) by API, access level and repository."""
    path = unquote(urlsplit(url).path)
    method = method.upper()
    if path in ("/v2/_catalog", "/acr/v1/_catalog"):
        return RequestKind("catalog", None)
    if method in ("GET", "HEAD"):
        level = "read"
    elif method == "DELETE":
        level = "delete"
    else:
        level = "write"
    match = _V2_PATH.match(path)
    if match:
        return RequestKind(f"v2:{level}", match.group(1))
    match = _ACR_PATH.match(path)
    if match:
        return RequestKind(f"acr:{level}", match.group(1))
    return RequestKind(f"other:{level}", None)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (Unix seconds) of a JWT, decoded with URL-safe base64; ``None`` for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None
