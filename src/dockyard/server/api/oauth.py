"""Token endpoints: ``GET /oauth2/token`` (Docker token spec), ``POST /oauth2/token``, ``POST /oauth2/exchange``."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors as e
from ..auth import Authenticator, Grant, parse_scopes, registry_host
from .common import json_response, read_limited

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
    return request.app.state.auth  # type: ignore[no-any-return]


def _service(request: Request, given: str | None) -> str:
    return given or registry_host(request)


def _refused(request: Request, message: str) -> e.RegistryError:
    return e.unauthorized(message, _auth(request).challenge(request, None))


async def token_get(request: Request) -> Response:
    """Docker token spec: Basic credentials (or none, for anonymous pull) and ``?service=&scope=``."""
    auth = _auth(request)
    header = request.headers.get("authorization")
    grant: Grant | None
    if header and header.lower().startswith("basic "):
        grant = auth.basic(header)
    elif header and header.lower().startswith("bearer "):
        grant = auth.from_refresh_token(header.split(" ", 1)[1].strip())
    else:
        grant = auth.anonymous()
    if grant is None:
        raise _refused(request, "invalid or missing credentials")
    scopes = parse_scopes(request.query_params.getlist("scope"))
    body = auth.access_token(grant, scopes, _service(request, request.query_params.get("service")))
    if request.query_params.get("offline_token") == "true" and header:
        body["refresh_token"] = auth.refresh_token(grant)
    return json_response(body)


async def token_post(request: Request) -> Response:
    """ACR/OAuth2 form: ``grant_type=password`` (username/password or none) or ``grant_type=refresh_token``."""
    auth = _auth(request)
    form = await _form(request)
    grant_type = str(form.get("grant_type") or "")
    grant: Grant | None
    if grant_type == "refresh_token":
        grant = auth.from_refresh_token(str(form.get("refresh_token") or ""))
        if grant is None:
            raise _refused(request, "invalid or expired refresh token")
    elif grant_type == "password":
        username, password = form.get("username"), form.get("password")
        grant = auth.login(str(username), str(password or "")) if username else auth.anonymous()
        if grant is None:
            raise _refused(request, "invalid or missing credentials")
    else:
        raise e.bad_request(f"unsupported grant_type {grant_type!r}: use password or refresh_token")
    scopes = parse_scopes([str(v) for v in form.getlist("scope")] + request.query_params.getlist("scope"))
    body = auth.access_token(grant, scopes, _service(request, str(form.get("service") or "") or None))
    if grant_type == "password" and form.get("access_type") == "offline" and form.get("username"):
        body["refresh_token"] = auth.refresh_token(grant)
    return json_response(body)


async def exchange(request: Request) -> Response:
    """Trade an Entra ID access token for a refresh token (any non-empty token with ``--accept-any-aad-token``)."""
    auth = _auth(request)
    form = await _form(request)
    grant_type = str(form.get("grant_type") or "")
    if grant_type not in ("access_token", "access_token_refresh_token"):
        raise e.bad_request(f"unsupported grant_type {grant_type!r}: use access_token")
    token = str(form.get("access_token") or "")
    if not auth.accept_any_aad_token:
        raise _refused(request, "this registry does not accept Entra ID tokens (start it with --accept-any-aad-token)")
    if not token:
        raise _refused(request, "access_token is required")
    return json_response({"refresh_token": auth.refresh_token(Grant("aad-identity", True))})


routes = [
    Route("/oauth2/token", token_get, methods=["GET"]),
    Route("/oauth2/token", token_post, methods=["POST"]),
    Route("/oauth2/exchange", exchange, methods=["POST"]),
]
