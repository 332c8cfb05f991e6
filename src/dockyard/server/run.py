"""Run the server with uvicorn (one process, or ``workers`` processes sharing the data directory).

The listening sockets are bound here, before anything is printed: the banner names the address actually bound
(``--port 0`` picks a free port), and an address that cannot be bound is a one-line error and a non-zero exit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from .config import ENV_VAR, ServerConfig
from .storage.private import exposure_warning, make_private_dir

log = logging.getLogger("dockyard.server")

#: prometheus-client's multiprocess directory (the same name as :data:`.metrics.MULTIPROC_ENV`; importing that
#: module here would import prometheus-client in the parent before the variable is set).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Connections the kernel queues before the server accepts them (uvicorn's default).
BACKLOG = 2048
#: Descriptors kept free for what is not a client connection (blob files, the database, upload sessions).
RESERVED_DESCRIPTORS = 256


class ServeError(Exception):
    """The server cannot start (the message says why, in one line)."""


def _best(module: str, fallback: str) -> str:
    try:
        __import__(module)
    except ImportError:
        return fallback
    return module


def _http_protocol() -> str:
    """The HTTP protocol: the connection-limiting httptools subclass (see ``.connection``), h11 without httptools."""
    if not _best("httptools", ""):
        return "h11"
    return "dockyard.server.connection:LimitedHttpToolsProtocol"


def _stopped(signum: int, frame: object) -> None:
    """Nothing left to do: the server has already shut down."""


def reuse_port_balances() -> bool:
    """Whether ``SO_REUSEPORT`` spreads new connections over the sockets sharing a port (Linux does; the BSDs
    and macOS hand them all to one socket)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_listeners(host: str, port: int, workers: int) -> list[socket.socket]:
    """The listening sockets of ``workers`` serving processes on ``host:port``: one per worker where the kernel
    balances an ``SO_REUSEPORT`` group (see :mod:`.supervisor`), else one that all share.

    Every socket listens before this returns, so a connection arriving while the workers start waits in the
    backlog of its socket. ``port`` 0 is resolved to one free port, where every socket is bound.
    Raises :class:`ServeError` when the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    reuse_port = workers > 1 and reuse_port_balances()
    sockets: list[socket.socket] = []
    try:
        if reuse_port:
            address = _free_address(family, kind, proto, address)
        for _ in range(workers if reuse_port else 1):
            sockets.append(_listen(family, kind, proto, address, reuse_port))
            address = sockets[0].getsockname()
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


#: A socket address as ``getaddrinfo`` gives it: (host, port) for IPv4, (host, port, flow, scope) for IPv6.
SocketAddress = tuple[Any, ...]


def _free_address(family: int, kind: int, proto: int, address: SocketAddress) -> SocketAddress:
    """``address`` (its port chosen when 0) after a plain bind there succeeded: an address already served is
    refused as in use, also when an ``SO_REUSEPORT`` group of this user serves it, which the new sockets would
    otherwise join."""
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        bound: SocketAddress = probe.getsockname()
        return bound


def _listen(family: int, kind: int, proto: int, address: SocketAddress, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # Only sockets of the same effective user may join the group (Linux); see _free_address.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def descriptor_budget(max_connections: int) -> int:
    """Raise this process's open-file limit toward what ``max_connections`` needs; the connection cap it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - RESERVED_DESCRIPTORS))


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> None:
    """Bind, print the URL, serve until SIGTERM/SIGINT. Raises :class:`ServeError` when it cannot start."""
    import uvicorn

    from .supervisor import SocketPerWorker
    from .tls import CertificateError, HangupForwarder, check_certificate, reloadable_context

    make_private_dir(Path(config.data_dir))
    warning = exposure_warning(Path(config.data_dir))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    allowed = descriptor_budget(config.max_connections)
    if allowed < config.max_connections:
        print(
            f"warning: the open-file limit allows {allowed} connections, not {config.max_connections} "
            "(raise `ulimit -n`)",
            file=sys.stderr,
            flush=True,
        )
        config = dataclasses.replace(config, max_connections=allowed)
    tls: dict[str, object] = {}
    if config.tls_cert:
        key = config.tls_key or config.tls_cert
        try:
            check_certificate(config.tls_cert, key)
        except CertificateError as exc:
            raise ServeError(str(exc)) from None
        tls = {"ssl_certfile": config.tls_cert, "ssl_keyfile": key, "ssl_context_factory": reloadable_context}
    prepare_metadata(config)
    os.environ[ENV_VAR] = config.to_env()
    sockets = bind_listeners(host, port, workers)
    uv_config = uvicorn.Config(
        "dockyard.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        loop="uvloop" if _best("uvloop", "") else "asyncio",
        http=_http_protocol(),
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        backlog=BACKLOG,
        # Pooled client connections stay usable between the steps of a push or a paged listing.
        # Annotated int by uvicorn, but only handed to loop.call_later, which takes fractions of a second too.
        timeout_keep_alive=config.keep_alive_timeout,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=config.max_header_size,
        **tls,  # type: ignore[arg-type]
    )
    bound_host, bound_port = sockets[0].getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    scheme = "https" if tls else "http"
    public = f", public URL {config.public_url}" if config.public_url else ""
    print(f"dockyard registry serving {scheme}://{shown}:{bound_port} (data: {config.data_dir}{public})", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal with the handler that was
    # installed before it started: make that one a no-op, so a requested stop exits with status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    shared_metrics = _shared_metrics_dir() if workers > 1 and config.metrics else None
    if shared_metrics is None:
        # One process keeps its metrics in memory, whatever directory the caller's environment names.
        os.environ.pop(MULTIPROC_ENV, None)
    if tls:
        # Until each serving process has its certificate-reloading handler (see .tls), a SIGHUP must not stop
        # it: held back (blocked) until then, here and in the workers, which inherit the mask.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        if workers > 1:
            supervisor = HangupForwarder if tls else SocketPerWorker
            supervisor(uv_config, sockets=sockets).run()
        else:
            server = uvicorn.Server(uv_config)
            server.run(sockets=sockets)
            if not server.started:
                raise ServeError("the server did not start (see the messages above)")
    finally:
        for sock in sockets:
            sock.close()
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
    sys.stdout.flush()


def prepare_metadata(config: ServerConfig) -> None:
    """Make sure the metadata database has the schema this dockyard knows before any worker opens it.

    The embedded SQLite database creates or upgrades its own schema (one host, one file, a transactional
    migration under a lock file); a PostgreSQL database is only checked — replicas of different releases may
    share it, so changing its schema is the operator's step, ``dockyard db upgrade``. A schema newer than this
    dockyard is refused either way. Raises :class:`ServeError` (one line naming what to run)."""
    import sqlalchemy as sa

    from .storage.schema import SchemaError, check, upgrade
    from .storage.stores import MetadataUrlError, is_sqlite, metadata_url

    try:
        url = metadata_url(config.metadata_url, Path(config.data_dir))
        if is_sqlite(url):
            upgrade(url)
        else:
            check(url)
    except (SchemaError, MetadataUrlError) as exc:
        raise ServeError(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        where = sa.engine.make_url(url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ServeError(f"cannot use the metadata database {where}: {reason}") from None


def _shared_metrics_dir() -> str:
    """A private temporary directory where the workers' metrics meet (prometheus-client's multiprocess mode);
    the workers inherit it through the environment. Removed when the server stops."""
    path = tempfile.mkdtemp(prefix="dockyard-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path

