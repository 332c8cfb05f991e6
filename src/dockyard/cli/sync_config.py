"""The ``dockyard sync --config FILE`` file: TOML (always), or YAML when PyYAML is installed (``.yaml``/``.yml``).

::

    [defaults]                      # any job key except source/dest; a job's own value wins
    tags = 'v[0-9].*'
    referrers = true

    [[credentials]]                 # per registry; without an entry, the command's usual credentials apply
    registry = "registry.example.com"
    username = "mirror"
    password_file = "/etc/dockyard/mirror.password"

    [[credentials]]
    registry = "127.0.0.1:5000"
    docker_config = "127.0.0.1:5000"   # the docker config (dockyard login / docker login) entry to use

    [[jobs]]
    source = "registry.example.com/team"
    dest = "127.0.0.1:5000/mirror/team"
    include = 'app/.*'
    exclude = '.*-test'
    platforms = ["linux/amd64", "linux/arm64"]
    repositories = ["app/web", "app/api"]   # instead of the catalog (registries that deny it)

Parsing only: the file becomes :class:`SyncConfig`; reading password files and building clients happens in
:mod:`dockyard.cli.sync`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .errors import UsageError

#: The keys of a job (and of ``[defaults]``, without ``source``/``dest``).
JOB_KEYS = frozenset({"source", "dest", "include", "exclude", "tags", "platforms", "referrers", "repositories"})
CREDENTIAL_KEYS = frozenset({"registry", "username", "password_file", "docker_config"})
TOP_KEYS = frozenset({"defaults", "credentials", "jobs"})
#: The largest config file read (a config, not a data set).
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class JobSpec:
    """One job as written (defaults applied)."""

    source: str
    dest: str
    include: str | None = None
    exclude: str | None = None
    tags: str | None = None
    platforms: tuple[str, ...] = ()
    referrers: bool = False
    repositories: tuple[str, ...] | None = None
    name: str = ""


@dataclass(frozen=True)
class CredentialSpec:
    """Credentials for one registry: a user with a password file, or a docker config entry."""

    registry: str
    username: str | None = None
    password_file: Path | None = None
    docker_config: str | None = None


@dataclass
class SyncConfig:
    jobs: list[JobSpec] = field(default_factory=list)
    credentials: list[CredentialSpec] = field(default_factory=list)


def _load(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageError(f"--config {path}: larger than {MAX_CONFIG_BYTES} bytes")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise UsageError(f"--config {path}: YAML needs PyYAML (pip install pyyaml); or write it as TOML") from None
        try:
            return yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise UsageError(f"--config {path}: not valid YAML: {exc}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: not valid TOML: {exc}") from None


def _table(value: Any, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a table of settings")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(keys))})")
    return value


def _text(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{where}: {key} must be a string")
    return value


def _texts(table: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def parse_config(path: Path) -> SyncConfig:
    """Read and check a sync config file; :class:`UsageError` (one line, naming the place) when it is wrong."""
    document = _table(_load(path) or {}, f"--config {path}", TOP_KEYS)
    defaults = _table(document.get("defaults") or {}, f"{path}: [defaults]", JOB_KEYS - {"source", "dest"})
    config = SyncConfig()
    for number, raw in enumerate(document.get("credentials") or [], 1):
        where = f"{path}: credentials #{number}"
        entry = _table(raw, where, CREDENTIAL_KEYS)
        registry = _text(entry, "registry", where)
        if not registry:
            raise UsageError(f"{where}: registry is required")
        username, password_file = _text(entry, "username", where), _text(entry, "password_file", where)
        docker_entry = _text(entry, "docker_config", where)
        if bool(username) != bool(password_file):
            raise UsageError(f"{where}: username and password_file go together")
        if username and docker_entry:
            raise UsageError(f"{where}: either username/password_file or docker_config, not both")
        if not username and not docker_entry:
            raise UsageError(f"{where}: give username and password_file, or docker_config")
        config.credentials.append(CredentialSpec(registry, username, Path(password_file) if password_file else None,
                                                 docker_entry))
    jobs = document.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise UsageError(f"--config {path}: no [[jobs]] (each with source and dest)")
    for number, raw in enumerate(jobs, 1):
        where = f"{path}: job #{number}"
        entry = {**defaults, **_table(raw, where, JOB_KEYS)}
        source, dest = _text(entry, "source", where), _text(entry, "dest", where)
        if not source or not dest:
            raise UsageError(f"{where}: source and dest are required")
        referrers = entry.get("referrers", False)
        if not isinstance(referrers, bool):
            raise UsageError(f"{where}: referrers must be true or false")
        config.jobs.append(JobSpec(
            source=source, dest=dest, include=_text(entry, "include", where), exclude=_text(entry, "exclude", where),
            tags=_text(entry, "tags", where), platforms=_texts(entry, "platforms", where) or (),
            referrers=referrers, repositories=_texts(entry, "repositories", where), name=f"#{number}",
        ))
    return config
