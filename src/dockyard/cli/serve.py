"""``dockyard serve`` (run the registry) and ``dockyard gc`` (remove unreferenced blobs and stale uploads)."""

from __future__ import annotations

from pathlib import Path

import typer

from .serve_config import ENV_PREFIX, load_config, print_effective

#: Seconds an unreferenced blob or idle upload session must be untouched before a collection removes it (the
#: default of ``dockyard gc --min-age`` and ``dockyard serve --gc-min-age``).
GC_MIN_AGE = 3600.0


def _data_dir(value: Path | None) -> Path:
    from ..server.config import default_data_dir

    return value if value is not None else default_data_dir()


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(5000, min=0, max=65535, help="Port to listen on (0: any free port, shown at start)."),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Where blobs and metadata live (default: $XDG_DATA_HOME/dockyard, else ~/.local/share/dockyard).",
    ),
    htpasswd: Path | None = typer.Option(
        None,
        "--htpasswd",
        help="Require auth: users from this htpasswd file (bcrypt, as `htpasswd -B`), re-read when it changes.",
    ),
    anonymous_pull: bool = typer.Option(
        False, "--anonymous-pull", help="With --htpasswd: allow pulls without credentials."
    ),
    accept_any_aad_token: bool = typer.Option(
        False,
        "--accept-any-aad-token",
        help="Emulator mode: /oauth2/exchange accepts any Entra ID token. WARNING: then ANYONE who can reach the "
        "server gets full rights, even with --htpasswd; only for local ACR emulation.",
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes sharing the data directory."),
    access_log: Path | None = typer.Option(
        None, "--access-log", help="Append one JSON line per request to this file ('-': standard output)."
    ),
    upload_ttl: float = typer.Option(
        4 * 3600.0, "--upload-ttl", min=0.1, help="Seconds an upload session may sit idle before it is removed."
    ),
    header_timeout: float = typer.Option(
        20.0, "--header-timeout", min=0.1, help="Seconds a client has to send a request's headers."
    ),
    body_timeout: float = typer.Option(
        60.0, "--body-timeout", min=0.1, help="Seconds without request body bytes before the request is dropped."
    ),
    keep_alive_timeout: float = typer.Option(
        30.0, "--keep-alive-timeout", min=0.1, help="Seconds an idle connection stays open between requests."
    ),
    max_connections: int = typer.Option(
        1000, "--max-connections", min=1, help="Open connections per worker; more are refused with 503."
    ),
    max_header_size: int = typer.Option(
        64 * 1024, "--max-header-size", min=1024, help="Bytes of request line and headers; more get 431."
    ),
    refresh_token_ttl: int = typer.Option(
        24 * 3600, "--refresh-token-ttl", min=1, help="Seconds each refresh token lives."
    ),
    token_max_lifetime: int = typer.Option(
        7 * 24 * 3600,
        "--token-max-lifetime",
        min=1,
        help="Seconds any token (refreshed or not) may live after the login it derives from.",
    ),
    login_failure_limit: int = typer.Option(
        10,
        "--login-failure-limit",
        min=0,
        help="Failed logins per client address per minute before logins answer 429 (0: no limit).",
    ),
    token_cache_size: int = typer.Option(
        4096,
        "--token-cache-size",
        min=0,
        help="Verified bearer tokens each server process remembers until they expire (0: verify every request).",
    ),
    htpasswd_recheck: float = typer.Option(
        1.0,
        "--htpasswd-recheck",
        min=0,
        help="Seconds between looks at the --htpasswd file while inotify reports no change (changes on this host "
        "apply at once; others, e.g. on a network file system, within this). 0: look on every request.",
    ),
    metrics: bool = typer.Option(
        True, "--metrics/--no-metrics", help="Serve Prometheus metrics at /metrics (--no-metrics: 404)."
    ),
    metrics_auth: bool = typer.Option(
        False, "--metrics-auth", help="With --htpasswd: /metrics only for authenticated users (else open to all)."
    ),
    log_format: str = typer.Option(
        "text", "--log-format", help="Request log and server messages on standard output: text or json."
    ),
    log_level: str = typer.Option("info", "--log-level", help="Server log level: debug, info, warning or error."),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="Serve https with this PEM certificate (chain); re-read on SIGHUP. Needs --tls-key."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The PEM private key of --tls-cert."),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="The URL clients use (scheme://host[:port], e.g. behind a reverse proxy): the token realm and "
        "service and the ACR bodies name it.",
    ),
    storage_url: str | None = typer.Option(
        None,
        "--storage-url",
        help="Where blobs and upload sessions live: a path or file:///path (default: the data dir), "
        "s3://bucket/prefix (AWS_* variables), az://container/prefix (AZURE_STORAGE_CONNECTION_STRING) or "
        "gs://bucket/prefix (GOOGLE_APPLICATION_CREDENTIALS: a service account key).",
    ),
    storage_redirect: str = typer.Option(
        "on",
        "--storage-redirect",
        help="on: blob GETs from object storage answer 307 to a short-lived presigned URL; off: the server "
        "streams them.",
    ),
    metadata_url: str | None = typer.Option(
        None,
        "--metadata-url",
        help="Where the metadata lives: sqlite:///path/metadata.db (default: in the data dir) or "
        "postgresql://user:pass@host:port/db (its schema made with `dockyard db upgrade`).",
    ),
    token_key_file: Path | None = typer.Option(
        None,
        "--token-key-file",
        help="Sign tokens with the key in this file (64+ hex digits, e.g. `openssl rand -hex 32`); replicas behind "
        "one load balancer must share it. Default: <data-dir>/auth/token-secret, created on first start.",
    ),
    gc_interval: str = typer.Option(
        "off",
        "--gc-interval",
        help="Collect garbage (as `dockyard gc`) every DURATION (90s, 30m, 6h, 1d) while serving, on one replica "
        "at a time; off: never.",
    ),
    gc_min_age: str = typer.Option(
        str(int(GC_MIN_AGE)),
        "--gc-min-age",
        help="With --gc-interval: seconds (or a duration) an unreferenced blob or idle upload must be untouched "
        "before a scheduled collection removes it.",
    ),
    cache_rules: list[str] = typer.Option(
        [],
        "--cache-rule",
        help="Make repositories a pull-through cache: 'TARGET=SOURCE[,ttl=1h][,credentials=HOST]"
        "[,username=U,password_file=F][,allow_push=true]', e.g. 'hub/*=docker.io/library/*' (repeatable; in a "
        "config file: cache_rules tables). See docs/mirror.md.",
    ),
    cache_check_timeout: float = typer.Option(
        10.0, "--cache-check-timeout", min=0.1, max=600.0,
        help="Seconds a cached tag's check upstream (one HEAD, after its ttl) may take before the cached copy is "
        "served instead.",
    ),
    cache_fetch_timeout: float = typer.Option(
        60.0, "--cache-fetch-timeout", min=1.0, max=3600.0,
        help="Seconds of silence from a cache rule's upstream before a fetch of a manifest or blob gives up.",
    ),
    config_file: Path | None = typer.Option(
        None,
        "--config",
        envvar=f"{ENV_PREFIX}_CONFIG",
        is_eager=True,
        callback=load_config,
        help="TOML file of settings: each flag is a key (_ for -). Flags win over DOCKYARD_<KEY> environment "
        "variables, which win over the file. Default: $DOCKYARD_CONFIG.",
    ),
    print_config: bool = typer.Option(
        False, "--print-config", help="Print the effective configuration (secrets masked) and exit."
    ),
) -> None:
    """Run a registry: OCI Distribution 1.1, the ACR /acr/v1 metadata API and /oauth2 tokens."""
    if print_config:
        print_effective(ctx)
        return
    from ..server.auth import HtpasswdError, KeyFileError
    from ..server.auth.startup import check_auth
    from ..server.config import ServerConfig
    from ..server.logsetup import LOG_FORMATS, LOG_LEVELS
    from ..server.run import ServeError
    from ..server.run import serve as run

    for flag, value, allowed in (("--log-format", log_format, LOG_FORMATS), ("--log-level", log_level, LOG_LEVELS)):
        if value not in allowed:
            typer.echo(f"error: {flag} must be one of {', '.join(allowed)}, not {value!r}", err=True)
            raise typer.Exit(2)
    if metrics_auth and htpasswd is None:
        typer.echo("error: --metrics-auth needs --htpasswd (without users nobody could scrape)", err=True)
        raise typer.Exit(2)
    if htpasswd is not None and not htpasswd.is_file():
        typer.echo(f"error: htpasswd file {htpasswd} does not exist", err=True)
        raise typer.Exit(2)
    if (tls_cert is None) != (tls_key is None):
        typer.echo("error: --tls-cert and --tls-key go together (give both, or neither for plain http)", err=True)
        raise typer.Exit(2)
    if public_url is not None:
        from ..server.public_url import parse_public_url

        try:
            public_url = parse_public_url(public_url)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    if storage_redirect not in ("on", "off"):
        typer.echo(f"error: --storage-redirect must be on or off, not {storage_redirect!r}", err=True)
        raise typer.Exit(2)
    storage_url = _storage_url(storage_url)
    interval = None if gc_interval.strip().lower() in ("off", "0", "") else _duration("--gc-interval", gc_interval)
    if interval == 0:
        interval = None
    checked_rules = _cache_rules(cache_rules)
    config = ServerConfig(
        data_dir=str(_data_dir(data_dir).resolve()),
        # Absolute, symlinks kept: a re-pointed link (a Kubernetes secret's update) is a change of the file.
        htpasswd=str(htpasswd.absolute()) if htpasswd else None,
        anonymous_pull=anonymous_pull,
        accept_any_aad_token=accept_any_aad_token,
        access_log=_access_log(access_log),
        upload_ttl=upload_ttl,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_connections=max_connections,
        max_header_size=max_header_size,
        refresh_token_ttl=refresh_token_ttl,
        token_max_lifetime=token_max_lifetime,
        login_failure_limit=login_failure_limit,
        token_cache_size=token_cache_size,
        htpasswd_recheck=htpasswd_recheck,
        metrics=metrics,
        metrics_auth=metrics_auth,
        log_format=log_format,
        log_level=log_level,
        tls_cert=str(tls_cert.resolve()) if tls_cert else None,
        tls_key=str(tls_key.resolve()) if tls_key else None,
        public_url=public_url,
        storage_url=storage_url,
        storage_redirect=storage_redirect == "on",
        metadata_url=metadata_url,
        token_key_file=str(token_key_file.resolve()) if token_key_file else None,
        gc_interval=interval,
        gc_min_age=_duration("--gc-min-age", gc_min_age),
        cache_rules=checked_rules,
        cache_check_timeout=cache_check_timeout,
        cache_fetch_timeout=cache_fetch_timeout,
    )
    try:
        report = check_auth(Path(config.data_dir), htpasswd, anonymous_pull, accept_any_aad_token, token_key_file)
    except (HtpasswdError, KeyFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in report.warnings:
        typer.echo(line, err=True)
    for line in report.info:
        typer.echo(line)
    try:
        run(config, host=host, port=port, workers=workers)
    except ServeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _duration(flag: str, value: str) -> float:
    """Seconds of a duration flag: a number of seconds, or ``90s``, ``30m``, ``6h``, ``1d``, ``1d12h`` (exit 2 with a
    one-line message otherwise)."""
    from ..workflows.durations import InvalidDurationError, parse_duration

    try:
        seconds = float(value)
    except ValueError:
        try:
            return parse_duration(value).total_seconds()
        except InvalidDurationError as exc:
            typer.echo(f"error: {flag}: {exc}", err=True)
            raise typer.Exit(2) from None
    if not seconds >= 0 or seconds == float("inf"):
        typer.echo(f"error: {flag} must be a duration of zero or more, not {value!r}", err=True)
        raise typer.Exit(2)
    return seconds


def _storage_url(value: str | None) -> str | None:
    """``--storage-url`` checked (exit 2 with a one-line message when unusable); a folder becomes absolute."""
    if value is None:
        return None
    from ..server.storage.factory import StorageUrlError, is_object_storage, storage_folder
    from ..server.storage.objects import open_object_store, parse_object_url

    try:
        if is_object_storage(value):
            open_object_store(parse_object_url(value))  # its credentials are usable (no request is made)
            return value
        return str(storage_folder(value, Path()).resolve())
    except StorageUrlError as exc:
        typer.echo(f"error: --storage-url: {exc}", err=True)
        raise typer.Exit(2) from None


def _cache_rules(values: list[str]) -> tuple[str, ...]:
    """``--cache-rule`` values (and ``[[cache_rules]]`` tables) checked, their credentials found (exit 2 with a
    one-line message naming the rule when one is unusable); each as the JSON the workers read."""
    from ..server.cache.rules import CacheRuleError, CacheRules, parse_rule
    from ..server.cache.upstream import resolve_credential

    try:
        rules = CacheRules(parse_rule(value) for value in values)
        for rule in rules.rules:
            resolve_credential(rule)
    except CacheRuleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return tuple(rule.to_json() for rule in rules.rules)


def _access_log(value: Path | None) -> str | None:
    """``--access-log``: ``-`` stays ``-`` (standard output), a file becomes an absolute path (workers may chdir)."""
    if value is None:
        return None
    return "-" if str(value) == "-" else str(value.resolve())


def gc(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="The registry's data directory."),
    storage_url: str | None = typer.Option(
        None, "--storage-url", envvar="DOCKYARD_STORAGE_URL",
        help="Where the registry's blobs live (as dockyard serve --storage-url; default: the data dir).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed; remove nothing."),
    min_age: float = typer.Option(
        GC_MIN_AGE, "--min-age", min=0.0,
        help="Seconds an unreferenced blob or upload must be untouched before removal.",
    ),
    batch_size: int = typer.Option(
        250, "--batch-size", min=1, max=10000,
        help="Candidates checked and removed per write transaction (the longest the write lock is held).",
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="First re-hash every blob and move those that do not match their digest to <data-dir>/quarantine/ "
        "(exit status 1 when any is found).",
    ),
    metadata_url: str | None = typer.Option(
        None,
        "--metadata-url",
        envvar="DOCKYARD_METADATA_URL",
        help="The registry's metadata database, as for dockyard serve (default: metadata.db in the data dir).",
    ),
) -> None:
    """Remove blobs no manifest references and stale upload sessions."""
    from ..server.gc import GcAbortedError, collect
    from ..server.gc import verify as verify_blobs
    from ..server.storage.schema import SchemaError, sqlite_path
    from ..server.storage.stores import MetadataUrlError
    from ..server.storage.stores import metadata_url as checked_url

    directory = _data_dir(data_dir)
    storage_url = _storage_url(storage_url)
    if verify and storage_url is not None and storage_url != str(directory.resolve()):
        typer.echo("error: --verify checks blob files in the data dir only, not --storage-url", err=True)
        raise typer.Exit(2)
    try:
        # An empty new SQLite database would make every blob garbage: an embedded one must exist already.
        database = sqlite_path(checked_url(metadata_url, directory))
        if database is not None and not database.exists():
            missing = f"{directory} is not a dockyard data directory" if metadata_url is None else (
                f"{database} is not a dockyard database")
            typer.echo(f"error: {missing}", err=True)
            raise typer.Exit(2)
        corrupt = verify_blobs(directory, dry_run=dry_run, metadata_url=metadata_url) if verify else []
        report = collect(directory, dry_run=dry_run, min_age=min_age, metadata_url=metadata_url,
                         storage_url=storage_url, batch_size=batch_size, progress=_progress)
    except (SchemaError, MetadataUrlError, GcAbortedError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for bad in corrupt:
        where = f"moved to {bad.quarantined}" if bad.quarantined else "would be quarantined"
        typer.echo(f"corrupt blob {bad.digest}: its {bad.size} bytes hash to {bad.actual}; {where}")
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {len(report.blobs)} blob(s) ({report.bytes} bytes) and {len(report.uploads)} upload session(s); "
        f"kept {report.kept} blob(s)"
    )
    for digest in report.blobs:
        typer.echo(f"  blob {digest}")
    for upload in report.uploads:
        typer.echo(f"  upload {upload}")
    if corrupt:
        typer.echo(f"error: {len(corrupt)} corrupt blob(s) found; push their content again to repair them", err=True)
        raise typer.Exit(1)


def _progress(line: str) -> None:
    typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` and ``gc`` commands to the CLI."""
    app.command(
        "serve",
        context_settings={"auto_envvar_prefix": ENV_PREFIX},
        epilog="Example:\n\n  dockyard serve --port 5000 --data-dir ./registry-data\n\n"
        "  dockyard serve --htpasswd ./htpasswd --anonymous-pull\n\n"
        "  dockyard serve --config /etc/dockyard/config.toml --tls-cert cert.pem --tls-key key.pem\n\n"
        "Revoke every token: stop the server, delete DATA_DIR/auth/token-secret, start it again.",
    )(serve)
    app.command("gc", epilog="Example:\n\n  dockyard gc --data-dir ./registry-data --dry-run")(gc)
