"""Server settings: what ``dockyard serve`` was asked to do, passed to every worker process."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

#: Environment variable carrying the settings to worker processes (``--workers N``).
ENV_VAR = "DOCKYARD_SERVER_CONFIG"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/dockyard``, else ``~/.local/share/dockyard``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dockyard"


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one ``dockyard serve``."""

    data_dir: str
    htpasswd: str | None = None
    anonymous_pull: bool = False
    accept_any_aad_token: bool = False
    access_log: str | None = None
    #: Seconds an upload session may sit idle (no bytes received) before the server removes it.
    upload_ttl: float = 4 * 3600.0
    #: Connection limits (see ``dockyard.server.connection``): seconds to receive a request's headers, seconds
    #: without body bytes while a request body is being received, seconds an idle keep-alive connection stays
    #: open, the most open connections, and the most bytes of request line and headers.
    header_timeout: float = 20.0
    body_timeout: float = 60.0
    keep_alive_timeout: float = 30.0
    max_connections: int = 1000
    max_header_size: int = 64 * 1024
    #: Seconds a refresh token lives (each one; see ``token_max_lifetime`` for the whole chain).
    refresh_token_ttl: int = 24 * 3600
    #: Seconds any token may live after the password (or exchange) it derives from was checked.
    token_max_lifetime: int = 7 * 24 * 3600
    #: Failed logins per client address per minute before logins answer 429 (0: no limit).
    login_failure_limit: int = 10
    #: Verified bearer tokens remembered per server process, until they expire (0: verify every request).
    token_cache_size: int = 4096
    #: Seconds between looks at an htpasswd file inotify watches (changes on this host apply at once; others
    #: within this); 0: look on every request.
    htpasswd_recheck: float = 1.0
    #: ``/metrics`` is served (``--no-metrics``: 404), and only to administrators with ``metrics_auth``.
    metrics: bool = True
    metrics_auth: bool = False
    #: The request log and the server's own messages on standard output: ``text`` or ``json``; their level.
    log_format: str = "text"
    log_level: str = "info"
    #: TLS: the PEM certificate chain and private key (``None``: plain HTTP); re-read on SIGHUP.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: The URL clients reach the registry by (``scheme://host[:port]``), ``None``: from each request.
    public_url: str | None = None
    #: Where blobs and upload sessions live: a path, ``file:///path``, ``s3://bucket/prefix``,
    #: ``az://container/prefix`` or ``gs://bucket/prefix`` (``None``: the data dir); blob GETs from object storage
    #: redirect to a presigned URL unless ``storage_redirect`` is off.
    storage_url: str | None = None
    storage_redirect: bool = True
    #: Where the metadata lives: ``sqlite:///path/metadata.db`` or ``postgresql://…`` (``None``: SQLite in the
    #: data directory).
    metadata_url: str | None = None
    #: The token signing key file every replica behind one load balancer shares (``None``: the data dir's own).
    token_key_file: str | None = None
    #: Seconds between scheduled garbage collections (one replica at a time; ``None``: off), and how long an
    #: unreferenced blob or idle upload session they find must be untouched before it goes.
    gc_interval: float | None = None
    gc_min_age: float = 3600.0
    #: Pull-through cache rules (``dockyard.server.cache.rules``), each as the JSON of a checked ``CacheRule``.
    cache_rules: tuple[str, ...] = ()
    #: Seconds a cached tag's check upstream (one HEAD) may take before the cached copy is served instead, and
    #: seconds of upstream silence before a fetch (manifest or blob) gives up.
    cache_check_timeout: float = 10.0
    cache_fetch_timeout: float = 60.0

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerConfig:
        raw = os.environ.get(ENV_VAR)
        if not raw:
            return cls(data_dir=str(default_data_dir()))
        return cls(**json.loads(raw))
