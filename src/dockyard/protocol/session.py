"""The sans-I/O core of a client: endpoint, credentials, the auth state machine and token cache, retries.

:meth:`Session.send` is a generator that sends one logical request: it attaches cached credentials up
front, answers ``401`` challenges (Bearer token services or Basic), and retries transient failures.
After warm-up, a metadata operation costs exactly one HTTP request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..credentials import BasicCredential, DockerConfigCredential, aad_scope, is_token_credential, token_text
from ..errors import (
    ClientAuthenticationError,
    HttpResponseError,
    InsecureCredentialsError,
    ResponseTooLargeError,
    ServiceRequestError,
)
from ..oci.hosts import is_loopback_url, parse_endpoint
from ..oci.hosts import origin as url_origin
from .challenge import Challenge, classify, fill_scope, jwt_expiry, parse_challenge, scope_template
from .instructions import CallCredential, Gen, Request, Sleep
from .messages import BodySource, Response
from .responses import error_from_response, json_body
from .retry import RETRY_STATUSES, RetryPolicy

#: Refresh an Entra-exchanged refresh token this many seconds before it expires.
REFRESH_MARGIN = 300.0
#: Treat an access token as expired this many seconds early.
ACCESS_MARGIN = 30.0
#: The most pages one listing reads (10,000 pages of 100 are a million names); the ``max_pages`` client option.
DEFAULT_MAX_PAGES = 10_000


#: The scopes ACR-style token services use, by request kind: used up front once the token service is known,
#: so a new kind of request costs no ``401`` round trip. A wrong guess only costs one token request.
GUESSED_SCOPES = {
    "catalog": "registry:catalog:*",
    "v2:read": "repository:{repository}:pull",
    "v2:write": "repository:{repository}:pull,push",
    "v2:delete": "repository:{repository}:delete",
    "acr:read": "repository:{repository}:metadata_read",
    "acr:write": "repository:{repository}:metadata_write",
    "acr:delete": "repository:{repository}:delete",
}


@dataclass
class _Token:
    value: str
    expires: float | None

    def fresh(self, margin: float, now: float) -> bool:
        """True when the token is good for at least ``margin`` more seconds after ``now`` (or has no known
        expiry)."""
        return self.expires is None or self.expires - now > margin


def _form(fields: dict[str, str | None]) -> tuple[bytes, dict[str, str]]:
    body = urlencode({k: v for k, v in fields.items() if v is not None}).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


class Session:
    """Per-client protocol state: endpoint, credential, learned challenges and cached tokens.

    Shared by the threads of a parallel download; its caches are plain dicts whose single-key updates
    are atomic, and a lost race only costs a duplicate token request.
    """

    def __init__(
        self,
        endpoint: str,
        credential: Any = None,
        *,
        audience: str | None = None,
        retry: RetryPolicy | None = None,
        allow_insecure_credentials: bool = False,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        parsed = parse_endpoint(endpoint)
        self.endpoint = parsed.url
        self.registry = parsed.netloc
        self.credential = credential
        self.audience = audience
        self.retry = retry or RetryPolicy()
        self.allow_insecure_credentials = allow_insecure_credentials
        #: The most pages one listing follows (a registry's ``Link`` headers could go on forever).
        self.max_pages = max_pages
        #: The clock token expiry is judged by (seconds since the epoch).
        self.clock: Callable[[], float] = time
        #: Whether the registry offers ``/acr/v1``; ``None`` until detected.
        self.acr_api: bool | None = None
        #: Whether ``/acr/v1/<name>/_manifests/<ref>`` accepts a tag; ``None`` until learned.
        self.acr_manifest_tags: bool | None = None
        #: Set by ``abort_uploads``: uploads stop at their next piece (``TransferCancelledError``).
        self.cancelled = threading.Event()
        #: The URLs of upload sessions started and not yet finished (what ``abort_uploads`` deletes).
        self.open_uploads: set[str] = set()
        self._basic_origins: set[str] = set()
        self._templates: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._access: dict[tuple[str, str], _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._token_method: dict[str, str] = {}
        self._token_services: dict[str, tuple[str, str]] = {}
        if credential is not None and not (
            isinstance(credential, (BasicCredential, DockerConfigCredential)) or is_token_credential(credential)
        ):
            raise TypeError(
                "credential must be None, a BasicCredential, a DockerConfigCredential or an object with get_token()"
            )

    # -- URLs -----------------------------------------------------------------------------------

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        """An absolute URL on the registry for ``path`` (starting with ``/``) and optional query."""
        url = self.endpoint + path
        if query:
            pairs = {k: str(v) for k, v in query.items() if v is not None}
            if pairs:
                url += ("&" if "?" in url else "?") + urlencode(pairs)
        return url

    # -- credentials ------------------------------------------------------------------------------

    def _basic(self) -> BasicCredential | None:
        if isinstance(self.credential, BasicCredential):
            return self.credential
        if isinstance(self.credential, DockerConfigCredential):
            return self.credential.resolve(self.registry)
        return None

    def _is_aad(self) -> bool:
        return self.credential is not None and not isinstance(
            self.credential, (BasicCredential, DockerConfigCredential)
        )

    def _check_secure(self, url: str) -> None:
        """Refuse to send secrets over plain HTTP to a host other than this machine unless allowed."""
        if urlsplit(url).scheme == "https" or is_loopback_url(url) or self.allow_insecure_credentials:
            return
        raise InsecureCredentialsError(
            f"refusing to send credentials over plain HTTP to {url_origin(url)}; use https or pass "
            "allow_insecure_credentials=True",
            url=url_origin(url),
        )

    # -- sending -----------------------------------------------------------------------------------

    def send(self, request: Request, *, auth: bool = True) -> Gen[Response]:
        """Send ``request`` with credentials, challenge handling and retries; return the final response."""
        attempt = 0
        challenged = False
        while True:
            if auth:
                yield from self._authorize(request)
            if isinstance(request.body, BodySource):
                request.body.rewind()
            try:
                response: Response = yield request
            except ServiceRequestError as exc:
                # A refused connection fails at once; dropped connections and timeouts are worth another try.
                if exc.connect_failed or not request.replayable or not self.retry.should_retry(attempt, None):
                    raise
                yield Sleep(self.retry.delay(attempt, None))
                attempt += 1
                continue
            if response.truncated:
                raise ResponseTooLargeError(
                    f"the registry sent more than {request.max_body} bytes for {request.method} "
                    f"{urlsplit(request.url).path}; reading stopped there",
                    status_code=response.status,
                )
            if auth and response.status == 401 and not challenged:
                challenge = parse_challenge(response.header("www-authenticate"))
                if challenge is not None and request.replayable and self._on_challenge(request, challenge):
                    challenged = True
                    continue
                return response
            if (
                response.status in RETRY_STATUSES
                and request.replayable
                and self.retry.should_retry(attempt, response)
            ):
                yield Sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            return response

    def authorize(self, request: Request) -> Gen[Request]:
        """Attach credentials to ``request`` without sending it (for readers that move the bytes themselves)."""
        yield from self._authorize(request)
        return request

    def _authorize(self, request: Request) -> Gen[None]:
        """Attach what we know this request needs: Basic auth, or a cached (or freshly fetched) bearer token."""
        request.headers.pop("Authorization", None)
        origin = url_origin(request.url)
        if origin != url_origin(self.endpoint):
            return
        if origin in self._basic_origins:
            basic = self._basic()
            if basic is not None:
                self._check_secure(request.url)
                request.headers["Authorization"] = basic.basic_header()
            return
        kind = classify(request.method, request.url)
        entry = self._templates.get((origin, kind.action))
        guessed = False
        if entry is None:
            known = self._token_services.get(origin)
            guess = GUESSED_SCOPES.get(kind.action)
            if known is None or guess is None or (kind.repository is None and "{repository}" in guess):
                return
            entry = (known[0], known[1], guess)
            guessed = True
        realm, service, template = entry
        scope = fill_scope(template, kind.repository)
        if request.extra_scope and request.extra_scope not in scope.split():
            scope = f"{scope} {request.extra_scope}".strip()
        token = self._access.get((service, scope))
        if token is None or not token.fresh(ACCESS_MARGIN, self.clock()):
            try:
                value = yield from self._fetch_access(realm, service, scope)
            except HttpResponseError:
                if guessed:
                    return  # send without a token; the challenge will tell the right scope
                raise
        else:
            value = token.value
        request.headers["Authorization"] = f"Bearer {value}"

    def _on_challenge(self, request: Request, challenge: Challenge) -> bool:
        """Learn from a ``401`` challenge; True when the request should be sent again."""
        origin = url_origin(request.url)
        sent = request.headers.get("Authorization", "")
        if challenge.scheme == "basic":
            if self._basic() is None or sent.startswith("Basic "):
                return False
            self._basic_origins.add(origin)
            return True
        kind = classify(request.method, request.url)
        realm = challenge.realm or self.url("/oauth2/token")
        service = challenge.service or urlsplit(realm).netloc
        scope = challenge.scope or ""
        own = " ".join(part for part in scope.split() if part != request.extra_scope)
        self._templates[(origin, kind.action)] = (realm, service, scope_template(own, kind.repository))
        self._token_services[origin] = (realm, service)
        if sent.startswith("Bearer "):
            # The token we sent was refused (expired or revoked): forget what we cached for this request.
            for key, token in list(self._access.items()):
                if f"Bearer {token.value}" == sent:
                    self._access.pop(key, None)
        self._access.pop((service, scope), None)
        return True

    # -- token service -----------------------------------------------------------------------------

    def _fetch_access(self, realm: str, service: str, scope: str) -> Gen[str]:
        """Get an access token for ``scope`` from the token service at ``realm`` and cache it."""
        basic = self._basic()
        if self._is_aad():
            value = yield from self._access_from_refresh(realm, service, scope, aad=True)
        elif basic is not None and basic.is_identity_token:
            value = yield from self._access_from_refresh(realm, service, scope, aad=False)
        else:
            value = yield from self._access_by_password(realm, service, scope, basic)
        return value

    def _store_access(self, service: str, scope: str, response: Response) -> str:
        data = json_body(response)
        value = data.get("access_token") or data.get("token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise ClientAuthenticationError("the token service answered without an access token",
                                            status_code=response.status)
        expires = jwt_expiry(value)
        expires_in = data.get("expires_in")
        if expires is None and isinstance(expires_in, (int, float)) and expires_in > 0:
            expires = self.clock() + float(expires_in)
        self._access[(service, scope)] = _Token(value, expires)
        return value

    def _access_by_password(
        self, realm: str, service: str, scope: str, basic: BasicCredential | None
    ) -> Gen[str]:
        """Anonymous or user/password token request: POST form (ACR style) or GET with Basic (Docker style)."""
        known = self._token_method.get(realm)
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
                self._check_secure(realm)
            response = yield from self.send(request, auth=False)
            if response.status in (400, 404, 405) and i + 1 < len(methods):
                continue
            if 200 <= response.status < 300:
                self._token_method[realm] = method
                return self._store_access(service, scope, response)
            break
        assert response is not None
        raise _auth_error(response, "the token service refused the credentials")

    def _access_from_refresh(self, realm: str, service: str, scope: str, *, aad: bool) -> Gen[str]:
        """Trade a refresh token (exchanged from Entra ID, or a Docker identity token) for an access token."""
        for attempt in range(2):
            if aad:
                refresh = yield from self._refresh_token(realm, service)
            else:
                basic = self._basic()
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
            self._check_secure(realm)
            response = yield from self.send(Request("POST", realm, headers, body), auth=False)
            if 200 <= response.status < 300:
                return self._store_access(service, scope, response)
            if response.status == 401 and aad and attempt == 0:
                self._refresh.pop(service, None)  # an opaque refresh token lives until the service refuses it
                continue
            raise _auth_error(response, "the token service refused the refresh token")
        raise AssertionError("unreachable")

    def _refresh_token(self, realm: str, service: str) -> Gen[str]:
        """The ACR refresh token for ``service``, exchanged from an Entra ID token once and cached until expiry."""
        cached = self._refresh.get(service)
        if cached is not None and cached.fresh(REFRESH_MARGIN, self.clock()):
            return cached.value
        result = yield CallCredential(self.credential, (aad_scope(self.audience),))
        aad_token = token_text(result)
        url = url_origin(realm) + "/oauth2/exchange"
        self._check_secure(url)
        body, headers = _form({"grant_type": "access_token", "service": service, "access_token": aad_token})
        response = yield from self.send(Request("POST", url, headers, body), auth=False)
        if not 200 <= response.status < 300:
            raise _auth_error(response, "the registry refused the Entra ID token")
        data = json_body(response)
        value = data.get("refresh_token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise ClientAuthenticationError("the token exchange answered without a refresh token")
        self._refresh[service] = _Token(value, jwt_expiry(value))
        return value


def _auth_error(response: Response, what: str) -> Exception:
    error = error_from_response(response, what)
    if isinstance(error, ClientAuthenticationError):
        return error
    if response.status in (400, 401, 403):
        return ClientAuthenticationError(
            error.message, status_code=response.status, error_code=error.error_code, errors=error.errors
        )
    return error
