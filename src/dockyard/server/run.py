"""Run the server with uvicorn (one process, or ``workers`` processes sharing the data directory)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from .config import ENV_VAR, ServerConfig
from .storage.private import exposure_warning, make_private_dir


def _best(module: str, fallback: str) -> str:
    try:
        __import__(module)
    except ImportError:
        return fallback
    return module


#: uvicorn releases whose httptools protocol internals ``.protocol`` was written against.
_ZERO_COPY_UVICORN = ("0.54.",)


def _http_protocol() -> str:
    """The HTTP protocol implementation: the zero-copy subclass on the uvicorn releases it was built for,
    uvicorn's own httptools protocol on others, h11 when httptools is missing."""
    if not _best("httptools", ""):
        return "h11"
    import uvicorn

    if uvicorn.__version__.startswith(_ZERO_COPY_UVICORN):
        return "dockyard.server.protocol:ZeroCopyBodyProtocol"
    return "httptools"


def _stopped(signum: int, frame: object) -> None:
    """Nothing left to do: the server has already shut down."""


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT. Prints the URL first."""
    import uvicorn

    make_private_dir(Path(config.data_dir))
    warning = exposure_warning(Path(config.data_dir))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    os.environ[ENV_VAR] = config.to_env()
    shown = f"[{host}]" if ":" in host else host
    print(f"dockyard registry serving http://{shown}:{port} (data: {config.data_dir})", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal with the handler that was
    # installed before it started: make that one a no-op, so a requested stop exits with status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    uvicorn.run(
        "dockyard.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        loop="uvloop" if _best("uvloop", "") else "asyncio",
        # httptools with request bodies passed on without uvicorn's two extra copies (see .protocol).
        http=_http_protocol(),
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        # Pooled client connections stay usable between the steps of a push or a paged listing.
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=1024 * 1024,
    )
    sys.stdout.flush()
