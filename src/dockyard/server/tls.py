"""TLS for ``dockyard serve``: one :class:`ssl.SSLContext` per process whose certificate is read again on SIGHUP.

Each serving process (the only one, or every ``--workers`` worker) builds its context through
:func:`reloadable_context`, which uvicorn calls while it loads its configuration; the context is shared by every
connection of that process, so after ``load_cert_chain`` runs again the next handshake presents the new
certificate while open connections keep theirs. With workers, :class:`HangupForwarder` passes the supervisor's
SIGHUP on to each worker instead of uvicorn's default of replacing them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .supervisor import SocketPerWorker


class CertificateError(Exception):
    """A certificate and key that cannot serve TLS (the message says why, in one line)."""


def check_certificate(cert: str, key: str) -> None:
    """Load ``cert`` and ``key`` into a throw-away context; :class:`CertificateError` when that fails."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:  # (an OSError too)
        reason = exc.reason or str(exc)
        raise CertificateError(f"TLS certificate {cert} and key {key} cannot be used: {reason}") from None
    except OSError as exc:
        raise CertificateError(f"cannot read {exc.filename or cert}: {exc.strerror or exc}") from None


def reload_certificate(context: ssl.SSLContext, cert: str, key: str) -> bool:
    """Load ``cert`` and ``key`` into ``context`` again; False (and the old certificate kept) when they are unusable.

    The files are checked in a fresh context first: a half-failed ``load_cert_chain`` must not leave the
    serving context with a certificate whose key it does not hold.
    """
    try:
        check_certificate(cert, key)
        context.load_cert_chain(cert, key)
    except (CertificateError, OSError, ssl.SSLError) as exc:
        print(f"error: keeping the previous TLS certificate: {exc}", file=sys.stderr, flush=True)
        return False
    print(f"reloaded the TLS certificate from {cert} (process {os.getpid()})", file=sys.stderr, flush=True)
    return True


def _on_hangup(context: ssl.SSLContext, cert: str, key: str, signum: int, frame: object) -> None:
    reload_certificate(context, cert, key)


def reloadable_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its usual context, reloaded from the same files on SIGHUP.

    Runs in the serving process's main thread (uvicorn loads its configuration there), where signal handlers
    may be installed. A worker starts with SIGHUP blocked (see :class:`HangupForwarder`): once the handler is in
    place it is unblocked, and a SIGHUP that arrived meanwhile is handled then.
    """
    context = default_factory()
    cert, key = str(config.ssl_certfile), str(config.ssl_keyfile or config.ssl_certfile)
    signal.signal(signal.SIGHUP, functools.partial(_on_hangup, context, cert, key))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    return context


@contextlib.contextmanager
def _hangup_blocked() -> Iterator[None]:
    """SIGHUP held back while workers are spawned: they inherit the blocked mask (a SIGHUP before their handler
    exists would end them), and the supervisor gets a SIGHUP that arrived meanwhile once it is unblocked."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


class HangupForwarder(SocketPerWorker):
    """The worker supervisor (:class:`.supervisor.SocketPerWorker`) for a TLS server, except that SIGHUP is
    forwarded to every worker (each reloads its certificate) rather than replacing all of them, which would cut
    the uploads in progress."""

    def init_processes(self) -> None:
        with _hangup_blocked():
            super().init_processes()

    def keep_subprocess_alive(self) -> None:
        with _hangup_blocked():
            super().keep_subprocess_alive()

    def handle_ttin(self) -> None:
        with _hangup_blocked():
            super().handle_ttin()

    def handle_hup(self) -> None:
        for process in self.processes:
            pid = process.pid
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGHUP)
                except ProcessLookupError:
                    pass
