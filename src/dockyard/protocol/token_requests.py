"""The three ways to get an access token from a registry's token service: a password (or anonymous) request,
a refresh-token grant (an Entra-exchanged or Docker identity token), and the Entra ID token exchange."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from ..credentials import BasicCredential, aad_scope, token_text
from ..errors import ClientAuthenticationError
from ..oci.hosts import origin as url_origin
from .challenge import jwt_expiry
from .credential_kinds import is_entra
from .instructions import CallCredential, Gen, Request
from .messages import Response
from .responses import error_from_response, json_body
from .token_cache import Token

if TYPE_CHECKING:
    from .session import Session


def _form(fields: dict[str, str | None]) -> tuple[bytes, dict[str, str]]:
    body = urlencode({k: v for k, v in fields.items() if v is not None}).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


def auth_error(response: Response, what: str) -> Exception:
    """The SDK error for a refused token request (an authentication error for 400/401/403)."""
    error = error_from_response(response, what)
    if isinstance(error, ClientAuthenticationError):
        return error
    if response.status in (400, 401, 403):
        return ClientAuthenticationError(
            error.message, status_code=response.status, error_code=error.error_code, errors=error.errors
        )
    return error


def fetch_access(session: Session, realm: str, service: str, scope: str) -> Gen[str]:
    """Get an access token for ``scope`` from the token service at ``realm`` and cache it."""
    basic = session.basic()
    if is_entra(session.credential):
        value = yield from access_from_refresh(session, realm, service, scope, aad=True)
    elif basic is not None and basic.is_identity_token:
        value = yield from access_from_refresh(session, realm, service, scope, aad=False)
    else:
        value = yield from access_by_password(session, realm, service, scope, basic)
    return value


def _store_access(session: Session, service: str, scope: str, response: Response) -> str:
    data = json_body(response)
    value = data.get("access_token") or data.get("token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ClientAuthenticationError("the token service answered without an access token",
                                        status_code=response.status)
    expires_in = data.get("expires_in") if isinstance(data, dict) else None
    session.tokens.store_access(service, scope, value, jwt_expiry(value), expires_in)
    return value


def access_by_password(
    session: Session, realm: str, service: str, scope: str, basic: BasicCredential | None
) -> Gen[str]:
    """Anonymous or user/password token request: POST form (ACR style) or GET with Basic (Docker style)."""
    known = session.tokens.methods.get(realm)
    acr_like = urlsplit(realm).path.rstrip("/").endswith("/oauth2/token")
    methods = [known] if known else (["post", "get"] if acr_like else ["get", "post"])
    response: Response | None = None
    for i, method in enumerate(methods):
        if method == "post":
            body, headers = _form(
                {
                    "grant_type": "password",
                    "service": service,
                    "scope": scope or None,
                    "username": basic.username if basic else None,
                    "password": basic.password if basic else None,
                }
            )
            request = Request("POST", realm, headers, body)
        else:
            query = {"service": service, "scope": scope or None}
            url = realm + ("&" if "?" in realm else "?") + urlencode({k: v for k, v in query.items() if v})
            request = Request("GET", url, {"Accept": "application/json"})
            if basic is not None:
                request.headers["Authorization"] = basic.basic_header()
        if basic is not None:
            session.check_secure(realm)
        response = yield from session.send(request, auth=False)
        if response.status in (400, 404, 405) and i + 1 < len(methods):
            continue
        if 200 <= response.status < 300:
            session.tokens.methods[realm] = method
            return _store_access(session, service, scope, response)
        break
    assert response is not None
    raise auth_error(response, "the token service refused the credentials")


def access_from_refresh(session: Session, realm: str, service: str, scope: str, *, aad: bool) -> Gen[str]:
    """Trade a refresh token (exchanged from Entra ID, or a Docker identity token) for an access token."""
    for attempt in range(2):
        if aad:
            refresh = yield from refresh_token(session, realm, service)
        else:
            basic = session.basic()
            assert basic is not None
            refresh = basic.password
        body, headers = _form(
            {
                "grant_type": "refresh_token",
                "service": service,
                "scope": scope or None,
                "refresh_token": refresh,
                "client_id": None if aad else "dockyard",
            }
        )
        session.check_secure(realm)
        response = yield from session.send(Request("POST", realm, headers, body), auth=False)
        if 200 <= response.status < 300:
            return _store_access(session, service, scope, response)
        if response.status == 401 and aad and attempt == 0:
            session.tokens.refresh.pop(service, None)  # an opaque refresh token lives until the service refuses it
            continue
        raise auth_error(response, "the token service refused the refresh token")
    raise AssertionError("unreachable")


def refresh_token(session: Session, realm: str, service: str) -> Gen[str]:
    """The ACR refresh token for ``service``, exchanged from an Entra ID token once and cached until expiry."""
    cached = session.tokens.fresh_refresh(service)
    if cached is not None:
        return cached
    result = yield CallCredential(session.credential, (aad_scope(session.audience),))
    aad_token = token_text(result)
    url = url_origin(realm) + "/oauth2/exchange"
    session.check_secure(url)
    body, headers = _form({"grant_type": "access_token", "service": service, "access_token": aad_token})
    response = yield from session.send(Request("POST", url, headers, body), auth=False)
    if not 200 <= response.status < 300:
        raise auth_error(response, "the registry refused the Entra ID token")
    data = json_body(response)
    value = data.get("refresh_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ClientAuthenticationError("the token exchange answered without a refresh token")
    session.tokens.refresh[service] = Token(value, jwt_expiry(value))
    return value
