"""The sans-I/O core of a client: one logical request sent with credentials, challenge handling and retries.

:meth:`Session.send` attaches cached credentials up front, answers ``401`` challenges (Bearer token services
or Basic) and retries transient failures; after warm-up, a metadata operation costs exactly one HTTP request.
The parts live next door: ``credential_kinds`` (what the credential is), ``challenges`` (what ``401``s taught),
``token_cache`` (cached tokens), ``token_requests`` (asking a token service) and ``retry`` (when to retry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..credentials import BasicCredential
from ..errors import (
    HttpResponseError,
    InsecureCredentialsError,
    ResponseTooLargeError,
    ServiceRequestError,
    TransferCancelledError,
)
from ..oci.hosts import is_loopback_url, parse_endpoint
from ..oci.hosts import origin as url_origin
from .challenge import Challenge, parse_challenge
from .challenges import Challenges
from .credential_kinds import basic_credential, check_credential
from .instructions import Gen, Request, Sleep
from .messages import BodySource, Response
from .retry import RETRY_STATUSES, RetryPolicy
from .token_cache import TokenCache
from .token_requests import fetch_access

#: The most pages one listing reads (10,000 pages of 100 are a million names); the ``max_pages`` client option.
DEFAULT_MAX_PAGES = 10_000


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
        #: Whether the registry offers ``/acr/v1``; ``None`` until detected.
        self.acr_api: bool | None = None
        #: Whether ``/acr/v1/<name>/_manifests/<ref>`` accepts a tag; ``None`` until learned.
        self.acr_manifest_tags: bool | None = None
        #: Set by ``abort_uploads``: the client's transfers are stopped. Uploads stop at their next piece, and every
        #: request sent (or retried) afterwards, but the deletes of ``abort_uploads`` itself, raises
        #: ``TransferCancelledError``.
        self.cancelled = threading.Event()
        #: The URLs of upload sessions started and not yet finished (what ``abort_uploads`` deletes).
        self.open_uploads: set[str] = set()
        #: What ``401`` challenges taught, per origin.
        self.challenges = Challenges()
        #: Cached access and refresh tokens.
        self.tokens = TokenCache()
        check_credential(credential)

    @property
    def clock(self) -> Callable[[], float]:
        """The clock token expiry is judged by (seconds since the epoch); replaceable."""
        return self.tokens.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.tokens.clock = clock

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

    def basic(self) -> BasicCredential | None:
        """The username and password (or identity token) for this registry, if the credential holds one."""
        return basic_credential(self.credential, self.registry)

    def check_secure(self, url: str) -> None:
        """Refuse to send secrets over plain HTTP to a host other than this machine unless allowed."""
        if urlsplit(url).scheme == "https" or is_loopback_url(url) or self.allow_insecure_credentials:
            return
        raise InsecureCredentialsError(
            f"refusing to send credentials over plain HTTP to {url_origin(url)}; use https or pass "
            "allow_insecure_credentials=True",
            url=url_origin(url),
        )

    # -- sending -----------------------------------------------------------------------------------

    def send(
        self, request: Request, *, auth: bool = True, cleanup: bool = False, first_attempt: int = 0
    ) -> Gen[Response]:
        """Send ``request`` with credentials, challenge handling and retries; return the final response.

        ``first_attempt``: the attempts the request already had (the lean blob reader sent it and was answered
        with a status to retry), counted against the retry policy.

        Once the session is :attr:`cancelled`, only ``cleanup`` requests (deleting what the stopped transfers
        left) are sent; any other raises ``TransferCancelledError``, and so does one whose connection was cut. (A
        token request, ``auth=False``, is made for a request that has passed this check, and is sent.)"""
        guarded = auth and not cleanup
        attempt = first_attempt
        challenged = False
        while True:
            if guarded:
                self.check_running()
            if auth:
                yield from self._authorize(request)
            if isinstance(request.body, BodySource):
                request.body.rewind()
            try:
                response: Response = yield request
            except ServiceRequestError as exc:
                if guarded:
                    self.check_running(exc)  # a connection cut by abort_uploads is not retried
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

    def check_running(self, cause: BaseException | None = None) -> None:
        """Raise ``TransferCancelledError`` (from ``cause``) when the session's transfers were stopped."""
        if self.cancelled.is_set():
            raise TransferCancelledError("the transfer was cancelled") from cause

    def authorize(self, request: Request) -> Gen[Request]:
        """Attach credentials to ``request`` without sending it (for readers that move the bytes themselves);
        ``TransferCancelledError`` once the session is :attr:`cancelled`."""
        self.check_running()
        yield from self._authorize(request)
        return request

    def _authorize(self, request: Request) -> Gen[None]:
        """Attach what we know this request needs: Basic auth, or a cached (or freshly fetched) bearer token."""
        request.headers.pop("Authorization", None)
        origin = url_origin(request.url)
        if origin != url_origin(self.endpoint):
            return
        if origin in self.challenges.basic_origins:
            basic = self.basic()
            if basic is not None:
                self.check_secure(request.url)
                request.headers["Authorization"] = basic.basic_header()
            return
        needed = self.challenges.scope_for(origin, request)
        if needed is None:
            return
        value = self.tokens.fresh_access(needed.service, needed.scope)
        if value is None:
            try:
                value = yield from fetch_access(self, needed.realm, needed.service, needed.scope)
            except HttpResponseError:
                if needed.guessed:
                    return  # send without a token; the challenge will tell the right scope
                raise
        request.headers["Authorization"] = f"Bearer {value}"

    def _on_challenge(self, request: Request, challenge: Challenge) -> bool:
        """Learn from a ``401`` challenge; True when the request should be sent again."""
        origin = url_origin(request.url)
        sent = request.headers.get("Authorization", "")
        if challenge.scheme == "basic":
            if self.basic() is None or sent.startswith("Basic "):
                return False
            self.challenges.basic_origins.add(origin)
            return True
        learned = self.challenges.learn_bearer(origin, request, challenge, self.url("/oauth2/token"))
        # The token we sent was refused (expired or revoked): forget what we cached for this request.
        self.tokens.forget_access(learned.service, learned.scope, sent)
        return True
