"""ASGI middleware that checks Basic credentials before a route runs, so bcrypt never runs on the event loop."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .. import errors as e
from ..rendering import error_response
from . import BASIC_GRANT, Authenticator, LoginThrottled


def authorization_header(scope: Scope) -> str | None:
    """The request's ``Authorization`` value, or ``None``: the first one, as Starlette's ``Headers.get`` answers (ASGI
    header names are lower case), without building a ``Headers`` for it."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None


def client_address(scope: Scope) -> str:
    """The client's address (after uvicorn's trusted proxy headers), ``""`` when unknown."""
    client = scope.get("client")
    return str(client[0]) if client else ""


class LoginGate:
    """Re-reads a changed htpasswd file (and changed tokens, for requests with a bearer token that may come from
    a repository-scoped token: one verified before whose source is not such a token skips that query), then checks a
    request's ``Basic`` credentials in a worker thread and leaves the outcome in the ASGI scope for
    :meth:`Authenticator.identify`. A client past the failed-login limit gets 429 TOOMANYREQUESTS with
    ``Retry-After`` instead of a password check."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.auth.enabled:
            await self.auth.sync_users()
            header = authorization_header(scope)
            if header and header[:7].lower() == "bearer " and self.auth.bearer_needs_tokens(header[7:].strip()):
                await self.auth.sync_tokens()  # (Basic credentials sync in Authenticator.login)
            if header and header[:6].lower() == "basic ":
                try:
                    grant = await self.auth.basic(header, client_address(scope))
                except LoginThrottled as exc:
                    error = e.too_many_requests(str(exc), exc.retry_after)
                    await error_response(error, head=scope["method"] == "HEAD")(scope, receive, send)
                    return
                scope[BASIC_GRANT] = (header, grant)
        await self.app(scope, receive, send)
