"""The upstream registry of a cache rule, reached through dockyard's own async SDK client.

The SDK already speaks to any OCI registry (token auth, challenges, bounded manifest reads, digest checks); this
module only adds what a cache needs on top: credentials resolved once (off the event loop), one client for quick
tag checks and one for fetches, no retry loops inside a pull (the client asking us retries itself), and a
backoff window after the upstream failed or throttled us. While the window is open no request goes upstream:
cached copies are served and misses are answered at once (429 with ``Retry-After`` after a 429, else 503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from ...aio import ContainerRegistryClient
from ...credentials import BasicCredential, docker_config
from ...errors import (
    DigestValidationError,
    HttpResponseError,
    ResponseTooLargeError,
    ServiceRequestError,
)
from ...models import GetManifestResult
from ...oci.manifest import Descriptor, InvalidManifestError
from ...protocol.retry import retry_after
from .. import errors as e
from .rules import CacheRule, CacheRuleError

log = logging.getLogger("dockyard.server.cache")

#: Seconds a tag check (one HEAD) may take before the cached copy is served instead.
CHECK_TIMEOUT = 10.0
#: Seconds of network silence before a fetch gives up.
FETCH_TIMEOUT = 60.0
#: Backoff after an unreachable or failing upstream: doubling from FIRST_BACKOFF up to MAX_BACKOFF seconds.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
#: The longest ``Retry-After`` honoured (a hostile or confused upstream cannot switch the cache off for days).
MAX_RETRY_AFTER = 600.0
#: The wait after a 429 without ``Retry-After``.
DEFAULT_RETRY_AFTER = 10.0


def resolve_credential(rule: CacheRule) -> BasicCredential | None:
    """The upstream credential of ``rule`` (blocking: reads files, may run a docker credential helper).

    :raises CacheRuleError: the docker config entry or the password file cannot be used.
    """
    if rule.username is not None and rule.password_file is not None:
        try:
            password = Path(rule.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CacheRuleError(
                f"cache rule {rule.text}: cannot read password_file {rule.password_file}: {exc.strerror or exc}"
            ) from None
        if not password:
            raise CacheRuleError(f"cache rule {rule.text}: password_file {rule.password_file} is empty")
        return BasicCredential(rule.username, password)
    if rule.credentials is not None:
        try:
            found = docker_config.lookup(rule.credentials)
        except (OSError, ValueError) as exc:
            raise CacheRuleError(f"cache rule {rule.text}: cannot read the docker config: {exc}") from None
        if found is None:
            path = docker_config.default_config_path()
            raise CacheRuleError(f"cache rule {rule.text}: no credentials for {rule.credentials!r} in {path}")
        return BasicCredential(*found)
    return None


class UpstreamError(Exception):
    """The upstream could not answer: ``error`` is what the client asking us is told."""

    def __init__(self, error: e.RegistryError) -> None:
        super().__init__(error.message)
        self.error = error


class UpstreamMissing(Exception):
    """The upstream does not have what was asked for (404)."""


class Upstream:
    """One rule's upstream: its clients (built on the server's event loop) and its backoff window."""

    def __init__(self, rule: CacheRule, credential: BasicCredential | None, *, check_timeout: float = CHECK_TIMEOUT,
                 fetch_timeout: float = FETCH_TIMEOUT) -> None:
        self.rule = rule
        self._credential = credential
        self._check_timeout = check_timeout
        self._fetch_timeout = fetch_timeout
        self._check: ContainerRegistryClient | None = None
        self._fetch: ContainerRegistryClient | None = None
        self._blocked_until = 0.0
        self._throttled = False
        self._backoff = 0.0

    def _client(self, timeout: float) -> ContainerRegistryClient:
        return ContainerRegistryClient(self.rule.endpoint, self._credential, timeout=timeout, retry_total=0,
                                       max_concurrency=1)

    def prepare(self) -> None:
        """Build both clients (blocking: TLS context, connection pools); call it off the event loop."""
        _ = self.check_client, self.fetch_client

    @property
    def check_client(self) -> ContainerRegistryClient:
        if self._check is None:
            self._check = self._client(self._check_timeout)
        return self._check

    @property
    def fetch_client(self) -> ContainerRegistryClient:
        if self._fetch is None:
            self._fetch = self._client(self._fetch_timeout)
        return self._fetch

    async def close(self) -> None:
        for client in (self._check, self._fetch):
            if client is not None:
                await client.close()

    # -- backoff ------------------------------------------------------------------------------------------

    def blocked(self) -> float:
        """Seconds left in the backoff window (0: the upstream may be asked)."""
        return max(0.0, self._blocked_until - time.monotonic())

    def refusal(self) -> e.RegistryError:
        """What a miss is answered while the backoff window is open."""
        wait = max(1, round(self.blocked()))
        if self._throttled:
            return e.too_many_requests(f"upstream {self.rule.endpoint} is rate-limiting this cache; retry later",
                                       wait)
        error = e.RegistryError(503, "UNAVAILABLE", f"upstream {self.rule.endpoint} is unavailable; retry later",
                                {"rule": self.rule.text})
        error.headers["Retry-After"] = str(wait)
        return error

    def _succeeded(self) -> None:
        self._backoff = 0.0
        self._throttled = False

    def _failed(self, exc: Exception) -> UpstreamError:
        """Open the backoff window for ``exc`` and return what the client is told."""
        status = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        if status == 429:
            after = retry_after(response) if response is not None else None
            wait = min(after if after is not None else DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER)
            self._throttled = True
        else:
            self._backoff = min(MAX_BACKOFF, self._backoff * 2 if self._backoff else FIRST_BACKOFF)
            wait = self._backoff
            self._throttled = False
        self._blocked_until = max(self._blocked_until, time.monotonic() + wait)
        log.warning("upstream %s of cache rule %s failed (%s); not asked again for %.0f s",
                    self.rule.endpoint, self.rule.text, str(exc)[:200], wait)
        return UpstreamError(self.refusal())

    def invalid(self, what: str, reason: str) -> UpstreamError:
        """What the client is told when the upstream sent ``what`` wrong (bad digest, size or content)."""
        return UpstreamError(e.RegistryError(
            502, "UNAVAILABLE", f"upstream {self.rule.endpoint} sent an invalid {what}: {reason}",
            {"rule": self.rule.text}))

    def _translate(self, exc: Exception, what: str) -> Exception:
        """The exception to raise for an SDK failure while fetching ``what``."""
        if isinstance(exc, HttpResponseError) and exc.status_code == 404:
            self._succeeded()
            return UpstreamMissing(what)
        if isinstance(exc, DigestValidationError | InvalidManifestError | ResponseTooLargeError):
            return self.invalid(what, str(exc))
        if isinstance(exc, HttpResponseError) and exc.status_code in (401, 403):
            return UpstreamError(e.RegistryError(
                502, "UNAVAILABLE", f"upstream {self.rule.endpoint} refused this cache's credentials for {what}",
                {"rule": self.rule.text}))
        if isinstance(exc, HttpResponseError | ServiceRequestError | OSError | asyncio.TimeoutError):
            return self._failed(exc)
        return exc

    # -- requests ----------------------------------------------------------------------------------------------

    async def head_manifest(self, repository: str, reference: str) -> Descriptor:
        """The upstream's descriptor of a tag (one HEAD). :class:`UpstreamError`, :class:`UpstreamMissing`."""
        if self.blocked():
            raise UpstreamError(self.refusal())
        try:
            found = await self.check_client.get_manifest_descriptor(repository, reference)
        except Exception as exc:
            raise self._translate(exc, f"manifest {repository}:{reference}") from exc
        self._succeeded()
        return found

    async def get_manifest(self, repository: str, reference: str) -> GetManifestResult:
        """The manifest (at most 4 MiB, verified against its digest). :class:`UpstreamError`,
        :class:`UpstreamMissing`."""
        if self.blocked():
            raise UpstreamError(self.refusal())
        try:
            found = await self.fetch_client.get_manifest(repository, reference)
        except Exception as exc:
            raise self._translate(exc, f"manifest {repository}:{reference}") from exc
        self._succeeded()
        return found

    async def open_blob(self, repository: str, digest: str, size: int) -> BlobStream:
        """The blob's bytes, at most ``size`` (the descriptor's), from the first chunk on (the request is made and
        answered before this returns). :class:`UpstreamError`, :class:`UpstreamMissing`.

        The bytes are not hashed here: the caller stores them through an upload session, which hashes them
        once and refuses to commit them unless they match ``digest`` (the size is still checked here)."""
        if self.blocked():
            raise UpstreamError(self.refusal())
        stream = await self.fetch_client.download_blob(repository, digest, size=size, verify=False)
        try:
            first = await anext(stream, b"")
        except Exception as exc:
            await stream.close()
            raise self._translate(exc, f"blob {repository}@{digest}") from exc
        self._succeeded()
        return BlobStream(self, stream, first, f"blob {repository}@{digest}")


class BlobStream:
    """An open upstream blob: its chunks, the first one already received."""

    def __init__(self, upstream: Upstream, stream: object, first: bytes, what: str) -> None:
        self._upstream = upstream
        self._stream = stream
        self._first: bytes | None = first
        self._what = what

    def __aiter__(self) -> BlobStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                return first
        try:
            return await anext(self._stream)  # type: ignore[call-overload,no-any-return]
        except StopAsyncIteration:
            raise
        except Exception as exc:
            raise self._upstream._translate(exc, self._what) from exc

    async def close(self) -> None:
        await self._stream.close()  # type: ignore[attr-defined]
