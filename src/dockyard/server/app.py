"""The ASGI application: the three APIs, OCI error bodies for every failure, optional access log.

The lifespan opens the registry's stores when the server starts and closes them when it stops; every failure
becomes an OCI error body through :func:`.rendering.error_response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp

from . import errors as e
from .accesslog import AccessLog
from .api import acr, distribution, health, oauth
from .auth import Authenticator, TokenLifetimes
from .auth.gate import LoginGate
from .cache.rules import CacheRules, rule_from_json
from .cache.service import PullThroughCache
from .config import ServerConfig
from .gc_schedule import GcSchedule
from .heap import keep_freed_memory, settle_heap
from .logsetup import ServerLog
from .metrics import Metrics
from .observe import RequestObserver
from .registry import Registry
from .rendering import error_response
from .storage.failures import CONDITIONS, storage_condition
from .storage.protocols import StoreGoneError, StoreUnavailableError

log = logging.getLogger("dockyard.server")

_STATUS_CODES = {404: "NOT_FOUND", 405: "UNSUPPORTED"}


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.RegistryError)
    return error_response(exc, head=request.method == "HEAD")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "UNSUPPORTED")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 405:
        message = f"method {request.method} is not supported on {request.url.path}"
    error = e.RegistryError(exc.status_code, code, message, headers=dict(exc.headers or {}))
    return error_response(error, head=request.method == "HEAD")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up mid-request: nothing to answer (whatever it uploaded so far stays in its session)."""
    return error_response(e.RegistryError(400, "BLOB_UPLOAD_INVALID", "the client disconnected"))


async def _storage_failure(request: Request, exc: Exception) -> Response:
    """507 with the cause when the storage refused a write (full, read-only, over quota); else a 500."""
    condition = storage_condition(exc, request.app.state.data_dir)
    if condition is None:
        raise exc
    log.error("%s %s: %s (%s)", request.method, request.url.path, CONDITIONS[condition], exc)
    return error_response(e.insufficient_storage(condition, CONDITIONS[condition]), head=request.method == "HEAD")


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The object store refused a request or could not be reached: 503, nothing acknowledged."""
    log.error("%s %s: %s", request.method, request.url.path, exc)
    error = e.RegistryError(503, "UNAVAILABLE", "the blob storage is unavailable; retry later")
    return error_response(error, head=request.method == "HEAD")


async def _store_gone(request: Request, exc: Exception) -> Response:
    """A store vanished under the running server (``metadata.db`` deleted): refuse (503) rather than acknowledge
    what cannot last."""
    log.error("%s", exc)
    error = e.RegistryError(503, "UNAVAILABLE", str(exc), {"database": str(getattr(exc, "path", ""))})
    return error_response(error, head=request.method == "HEAD")


def sweep_interval(upload_ttl: float) -> float:
    """How often the running server looks for expired upload sessions (a fraction of the TTL, at most 10 min)."""
    return min(max(upload_ttl / 4, 0.25), 600.0)


async def _sweep_uploads(registry: Registry, upload_ttl: float, metrics: Metrics | None) -> None:
    """Remove idle upload sessions every :func:`sweep_interval` seconds, for as long as the server runs; each
    sweep counts as a garbage collection run (``kind="upload_sweep"``) in ``metrics``."""
    while True:
        await asyncio.sleep(sweep_interval(upload_ttl))
        started = time.time()
        try:
            expired = await registry.expire_uploads(upload_ttl)
        except StoreGoneError:
            continue  # every request reports it already
        except Exception:
            log.exception("sweeping expired upload sessions failed")
            continue
        if metrics is not None:
            metrics.observe_gc("upload_sweep", started, {"uploads": len(expired)})
        if expired:
            log.info("removed %d upload session(s) idle for %.0f s or more", len(expired), upload_ttl)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    error = e.RegistryError(500, "UNKNOWN", "internal server error")
    return error_response(error, head=request.method == "HEAD")


def create_app(config: ServerConfig, *, serving_process: bool = False) -> ASGIApp:
    """Build the application for ``config``; its lifespan opens the stores in ``config.data_dir``.

    ``serving_process``: the app is the whole process (a ``dockyard serve`` worker): its lifespan ends start-up
    with :func:`.heap.keep_freed_memory` and :func:`.heap.settle_heap`."""
    data_dir = Path(config.data_dir)
    metrics = Metrics() if config.metrics else None
    server_log = ServerLog(config.log_format, config.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server_log.start()
        registry = await asyncio.to_thread(
            Registry.open, data_dir, config.metadata_url, config.storage_url, storage_redirect=config.storage_redirect
        )
        app.state.registry = registry
        cache = PullThroughCache(registry, CacheRules(rule_from_json(text) for text in config.cache_rules),
                                 check_timeout=config.cache_check_timeout, fetch_timeout=config.cache_fetch_timeout)
        await cache.start()
        app.state.cache = cache
        if app.state.auth.enabled:
            app.state.auth.attach(registry)
            app.state.auth.watch_users()
        sweeper = asyncio.create_task(_sweep_uploads(registry, config.upload_ttl, metrics))
        schedule = None
        if config.gc_interval:
            schedule = GcSchedule(*registry.stores, interval=config.gc_interval, min_age=config.gc_min_age)
            schedule.start()
        if serving_process:
            keep_freed_memory()
            settle_heap()
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if schedule is not None:
                await asyncio.to_thread(schedule.stop)
            app.state.auth.attach(None)
            app.state.auth.unwatch_users()
            await cache.close()
            await asyncio.to_thread(registry.close)
            server_log.stop()

    routes = [
        *distribution.routes, *acr.routes, *oauth.routes,
        *health.routes(metrics_enabled=config.metrics, metrics_auth=config.metrics_auth),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            e.RegistryError: _registry_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            OSError: _storage_failure,
            sqlite3.Error: _storage_failure,
            StoreGoneError: _store_gone,
            StoreUnavailableError: _store_unavailable,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.data_dir = data_dir
    app.state.public_url = config.public_url
    app.state.auth = Authenticator(
        data_dir,
        htpasswd=Path(config.htpasswd) if config.htpasswd else None,
        anonymous_pull=config.anonymous_pull,
        accept_any_aad_token=config.accept_any_aad_token,
        lifetimes=TokenLifetimes(refresh=config.refresh_token_ttl, max_total=config.token_max_lifetime),
        login_failure_limit=config.login_failure_limit,
        key_file=Path(config.token_key_file) if config.token_key_file else None,
        token_cache_size=config.token_cache_size,
        htpasswd_recheck=config.htpasswd_recheck,
    )
    app.state.metrics = metrics
    asgi: ASGIApp = RequestObserver(LoginGate(app, app.state.auth), routes, metrics)
    if config.access_log:
        return AccessLog(asgi, config.access_log)
    return asgi


def app_from_env() -> ASGIApp:
    """Factory for worker processes: settings come from the environment (see :mod:`.config`)."""
    return create_app(ServerConfig.from_env(), serving_process=True)
