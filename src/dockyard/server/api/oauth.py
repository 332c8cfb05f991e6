"""Token endpoints: ``GET /oauth2/token`` (Docker token spec), ``POST /oauth2/token``, ``POST /oauth2/exchange``.

Tokens are always issued for this registry's own service name (:func:`.common.registry_host`), whatever
``service`` the client names; a token is only ever accepted by the registry it names.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from .. import errors as e
from ..auth import Authenticator, Grant, LoginThrottled, parse_scopes
from ..auth.gate import client_address
from .access import challenge, record_subject, route
from .common import json_response, read_limited, registry_host

#: Largest token request form accepted.
FORM_LIMIT = 64 * 1024


class _Form:
    """A parsed ``application/x-www-form-urlencoded`` body."""

    def __init__(self, body: bytes) -> None:
        self._data = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    def get(self, key: str) -> str | None:
        values = self._data.get(key)
        return values[0] if values else None

    def getlist(self, key: str) -> list[str]:
        return list(self._data.get(key, []))


async def _form(request: Request) -> _Form:
    return _Form(await read_limited(request, FORM_LIMIT, "UNSUPPORTED"))


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def _refused(request: Request, message: str) -> e.RegistryError:
    return e.unauthorized(message, challenge(request))


async def token_get(request: Request) -> Response:
    """Docker token spec: Basic credentials, a refresh token as Bearer, or none (anonymous pull);
    ``?scope=`` and ``offline_token=true`` for a refresh token too."""
    auth = _auth(request)
    service = registry_host(request)
    header = request.headers.get("authorization")
    grant: Grant | None
    if header and header.lower().startswith("basic "):
        grant = auth.identify(request, service)
    elif header and header.lower().startswith("bearer "):
        grant = auth.from_refresh_token(header.split(" ", 1)[1].strip(), service)
    else:
        grant = auth.anonymous()
    if grant is None:
        raise _refused(request, "invalid or missing credentials")
    record_subject(request, grant)
    scopes = parse_scopes(request.query_params.getlist("scope"))
    body = auth.access_token(grant, scopes, service)
    if request.query_params.get("offline_token") == "true" and header:
        body["refresh_token"] = auth.refresh_token(grant, service)
    return json_response(body)


async def token_post(request: Request) -> Response:
    """ACR/OAuth2 form: ``grant_type=password`` (username/password or none) or ``grant_type=refresh_token``."""
    auth = _auth(request)
    service = registry_host(request)
    form = await _form(request)
    grant_type = str(form.get("grant_type") or "")
    grant: Grant | None
    if grant_type == "refresh_token":
        grant = auth.from_refresh_token(str(form.get("refresh_token") or ""), service)
        if grant is None:
            raise _refused(request, "invalid or expired refresh token")
    elif grant_type == "password":
        username, password = form.get("username"), form.get("password")
        try:
            grant = await auth.login(username, password or "", client_address(request.scope)) if username \
                else auth.anonymous()
        except LoginThrottled as exc:
            raise e.too_many_requests(str(exc), exc.retry_after) from None
        if grant is None:
            raise _refused(request, "invalid or missing credentials")
    else:
        raise e.bad_request(f"unsupported grant_type {grant_type!r}: use password or refresh_token")
    record_subject(request, grant)
    scopes = parse_scopes([str(v) for v in form.getlist("scope")] + request.query_params.getlist("scope"))
    body = auth.access_token(grant, scopes, service)
    if grant_type == "password" and form.get("access_type") == "offline" and form.get("username"):
        body["refresh_token"] = auth.refresh_token(grant, service)
    return json_response(body)


async def exchange(request: Request) -> Response:
    """Trade an Entra ID access token for a refresh token (any non-empty token with ``--accept-any-aad-token``).
    Such refresh tokens are marked, and refused once the server runs without that flag. A valid refresh token of
    this registry is accepted too (and traded for a new one with the same rights and login time), so Microsoft's
    SDK can use a repository-scoped token through a credential that returns its refresh token."""
    auth = _auth(request)
    form = await _form(request)
    grant_type = str(form.get("grant_type") or "")
    if grant_type not in ("access_token", "access_token_refresh_token"):
        raise e.bad_request(f"unsupported grant_type {grant_type!r}: use access_token")
    token = str(form.get("access_token") or "")
    service = registry_host(request)
    own = auth.from_refresh_token(token, service) if auth.enabled and token.count(".") == 2 else None
    if own is not None:
        # One of this registry's own refresh tokens (from a password login, e.g. of a repository-scoped token)
        # stands in for an Entra ID token: SDK credentials can hand it over. It gets the same rights back.
        return json_response({"refresh_token": auth.refresh_token(own, service)})
    if not auth.accept_any_aad_token:
        raise _refused(request, "this registry does not accept Entra ID tokens (start it with --accept-any-aad-token)")
    if not token:
        raise _refused(request, "access_token is required")
    return json_response({"refresh_token": auth.refresh_token(auth.aad_grant(), service)})


routes = [
    route("/oauth2/token", token_get, "oauth.token", ["GET"]),
    route("/oauth2/token", token_post, "oauth.token", ["POST"]),
    route("/oauth2/exchange", exchange, "oauth.exchange", ["POST"]),
]
