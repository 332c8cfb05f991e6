"""The ASGI application: the three APIs, OCI error bodies for every failure, optional access log."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp

from . import errors as e
from .accesslog import AccessLog
from .api import acr, distribution, oauth
from .auth import Authenticator, TokenLifetimes
from .auth.gate import LoginGate
from .config import ServerConfig
from .registry import Registry

log = logging.getLogger("dockyard.server")

_STATUS_CODES = {404: "NOT_FOUND", 405: "UNSUPPORTED"}


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.RegistryError)
    return exc.response(head=request.method == "HEAD")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "UNSUPPORTED")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 405:
        message = f"method {request.method} is not supported on {request.url.path}"
    error = e.RegistryError(exc.status_code, code, message, headers=dict(exc.headers or {}))
    return error.response(head=request.method == "HEAD")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up mid-request: nothing to answer (whatever it uploaded so far stays in its session)."""
    return e.RegistryError(400, "BLOB_UPLOAD_INVALID", "the client disconnected").response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    error = e.RegistryError(500, "UNKNOWN", "internal server error")
    return error.response(head=request.method == "HEAD")


def create_app(config: ServerConfig) -> ASGIApp:
    """Build the application for ``config`` (opens the data directory)."""
    data_dir = Path(config.data_dir)
    app = Starlette(
        routes=[*distribution.routes, *acr.routes, *oauth.routes],
        exception_handlers={
            e.RegistryError: _registry_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _unexpected,
        },
    )
    app.state.registry = Registry(data_dir)
    app.state.auth = Authenticator(
        data_dir,
        htpasswd=Path(config.htpasswd) if config.htpasswd else None,
        anonymous_pull=config.anonymous_pull,
        accept_any_aad_token=config.accept_any_aad_token,
        lifetimes=TokenLifetimes(refresh=config.refresh_token_ttl, max_total=config.token_max_lifetime),
        login_failure_limit=config.login_failure_limit,
    )
    asgi: ASGIApp = LoginGate(app, app.state.auth)
    if config.access_log:
        return AccessLog(asgi, config.access_log)
    return asgi


def app_from_env() -> ASGIApp:
    """Factory for worker processes: settings come from the environment (see :mod:`.config`)."""
    return create_app(ServerConfig.from_env())
