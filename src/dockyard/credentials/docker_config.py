"""Docker's ``config.json``: where ``docker login`` (and ``dockyard login``) keep registry credentials.

Reads ``auths`` (``auth`` = base64 ``user:password``, or ``identitytoken``), and asks credential helper
programs (``credsStore`` / ``credHelpers`` -> ``docker-credential-<name> get``) as Docker does.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..oci import hosts

__all__ = [
    "IDENTITY_TOKEN_USERNAME",
    "default_config_path",
    "lookup",
    "normalize_registry",
    "read_config",
    "remove_auth",
    "write_auth",
]

#: The user name Docker reports for an identity (refresh) token instead of a password.
IDENTITY_TOKEN_USERNAME = "<token>"

_DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def default_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` when ``DOCKER_CONFIG`` is set, else ``~/.docker/config.json``."""
    directory = os.environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return Path.home() / ".docker" / "config.json"


def normalize_registry(registry: str) -> str:
    """The ``host[:port]`` of a registry written as a host, a URL, or Docker Hub's legacy key."""
    value = registry.strip()
    value = value.split("://", 1)[1] if "://" in value else value
    value = value.split("/", 1)[0]
    try:
        value = hosts.registry_host(value)
    except hosts.InvalidEndpointError:
        value = value.lower()  # a key Docker wrote that is no registry dockyard can reach: keep it comparable
    return "index.docker.io" if value in _DOCKER_HUB_KEYS else value


def read_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parsed config file; ``{}`` when it does not exist. A malformed file raises ``ValueError``."""
    file = Path(path) if path is not None else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object")
    return data


def _write_config(data: dict[str, Any], path: str | os.PathLike[str] | None) -> None:
    """Write ``data`` atomically (temp file + rename), readable by the owner only."""
    file = Path(path) if path is not None else default_config_path()
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent="\t")
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _matching_key(mapping: dict[str, Any], registry: str) -> str | None:
    wanted = normalize_registry(registry)
    for key in mapping:
        if normalize_registry(key) == wanted:
            return key
    return None


def write_auth(registry: str, username: str, password: str, path: str | os.PathLike[str] | None = None) -> None:
    """Store ``username``/``password`` for ``registry`` under ``auths`` (replacing an existing entry)."""
    data = read_config(path)
    auths = data.setdefault("auths", {})
    key = _matching_key(auths, registry) or normalize_registry(registry)
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths[key] = {"auth": encoded}
    _write_config(data, path)


def remove_auth(registry: str, path: str | os.PathLike[str] | None = None) -> bool:
    """Remove the ``auths`` entry for ``registry``; ``False`` when there was none."""
    data = read_config(path)
    auths = data.get("auths") or {}
    key = _matching_key(auths, registry)
    if key is None:
        return False
    del auths[key]
    _write_config(data, path)
    return True


def _run_helper(helper: str, registry: str) -> tuple[str, str] | None:
    """Ask ``docker-credential-<helper> get`` for ``registry``; ``None`` when it knows nothing."""
    program = f"docker-credential-{helper}"
    for server in (registry, f"https://{registry}"):
        try:
            done = subprocess.run(
                [program, "get"], input=server.encode(), capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            continue
        try:
            answer = json.loads(done.stdout)
        except json.JSONDecodeError:
            continue
        secret = answer.get("Secret")
        if secret:
            return str(answer.get("Username") or IDENTITY_TOKEN_USERNAME), str(secret)
    return None


def lookup(registry: str, path: str | os.PathLike[str] | None = None) -> tuple[str, str] | None:
    """``(username, password)`` for ``registry``, or ``None``.

    Order as Docker: a ``credHelpers`` entry for the registry, then ``credsStore``, then ``auths``.
    An identity token comes back as ``("<token>", token)``.
    """
    data = read_config(path)
    host = normalize_registry(registry)
    helpers = data.get("credHelpers") or {}
    key = _matching_key(helpers, host)
    if key is not None:
        found = _run_helper(str(helpers[key]), host)
        if found:
            return found
    store = data.get("credsStore")
    if store:
        found = _run_helper(str(store), host)
        if found:
            return found
    auths = data.get("auths") or {}
    key = _matching_key(auths, host)
    if key is None:
        return None
    entry = auths[key] or {}
    token = entry.get("identitytoken")
    if token:
        return IDENTITY_TOKEN_USERNAME, str(token)
    encoded = entry.get("auth")
    if encoded:
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password
    if entry.get("username") and entry.get("password"):
        return str(entry["username"]), str(entry["password"])
    return None
