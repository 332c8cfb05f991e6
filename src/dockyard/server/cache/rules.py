"""Cache rules: which repositories of this registry are pull-through caches of which upstream repositories.

A rule maps a TARGET here to a SOURCE upstream (pure: no I/O, no HTTP):

* TARGET is one repository (``alpine``) or a prefix ending in ``/*`` (``hub/*``); ``*`` alone is every
  repository (a root mirror, as Docker's ``registry-mirrors`` expects).
* SOURCE is ``[http(s)://]host[:port]/repo-or-prefix[/*]``: without a scheme https, plain http only when the
  scheme says ``http://``. A prefix TARGET needs a prefix SOURCE and a repository TARGET a repository SOURCE.
  Docker Hub's conventions apply: ``docker.io`` (and ``index.docker.io``) is served by
  ``registry-1.docker.io``, and a one-part name there gets ``library/`` (``docker.io/alpine`` is
  ``library/alpine``).

On the command line a rule is ``TARGET=SOURCE[,key=value…]`` (keys ``ttl``, ``credentials``, ``username``,
``password_file``, ``allow_push``); in a config file it is a ``[[cache_rules]]`` table with the same keys plus
``target`` and ``source``. The most specific rule wins: an exact repository over a prefix, a longer prefix over a
shorter one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ...oci import hosts
from ...oci.names import is_valid_repository
from ...workflows.durations import InvalidDurationError, parse_duration

#: Seconds a cached tag is served before it is checked against the upstream again (one HEAD).
DEFAULT_TTL = 3600.0
#: Docker Hub's registry names and the host that serves its API.
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"
#: The keys of a rule (config table keys; ``key=value`` options of ``--cache-rule``).
RULE_KEYS = ("target", "source", "ttl", "credentials", "username", "password_file", "allow_push")


class CacheRuleError(ValueError):
    """A cache rule that cannot be used (the message is one line, naming the rule)."""


@dataclass(frozen=True)
class CacheRule:
    """One rule: ``target`` here is a pull-through cache of ``repository`` at ``endpoint``."""

    #: As written (``hub/*``, ``alpine`` or ``*``).
    target: str
    #: As written (``docker.io/library/*``).
    source: str
    #: ``https://registry-1.docker.io``: the upstream registry's base URL.
    endpoint: str
    #: The upstream repository, or the upstream prefix for a prefix rule (``library``; ``""``: the whole registry).
    repository: str
    #: Whether TARGET (and SOURCE) are prefixes.
    prefix: bool
    ttl: float = DEFAULT_TTL
    #: A docker config (``config.json``) entry whose credentials are used upstream.
    credentials: str | None = None
    #: A user name and a file holding its password (instead of ``credentials``).
    username: str | None = None
    password_file: str | None = None
    #: Pushes and deletes into the cached repositories are allowed (otherwise 403 DENIED).
    allow_push: bool = False

    @property
    def text(self) -> str:
        """``TARGET=SOURCE``, as errors and logs name the rule."""
        return f"{self.target}={self.source}"

    @property
    def docker_hub(self) -> bool:
        return self.endpoint == f"https://{DOCKER_HUB_API}"

    def upstream_name(self, name: str) -> str | None:
        """The upstream repository of local repository ``name``, ``None`` when this rule does not cover it."""
        if not self.prefix:
            return self._hub_name(self.repository) if name == self.target else None
        local = self.target[:-1]  # "hub/" of "hub/*"; "" of "*"
        if not name.startswith(local) or name == local.rstrip("/"):
            return None
        rest = name[len(local):]
        upstream = f"{self.repository}/{rest}" if self.repository else rest
        return self._hub_name(upstream)

    def _hub_name(self, repository: str) -> str:
        if self.docker_hub and "/" not in repository:
            return f"library/{repository}"
        return repository

    def specificity(self) -> tuple[int, int]:
        """Sort key: exact repositories first, then longer prefixes."""
        return (0 if self.prefix else 1, len(self.target))

    def to_json(self) -> str:
        """The rule as a JSON object (carried to worker processes)."""
        return json.dumps(asdict(self))


def _duration(value: Any, rule: str) -> float:
    if isinstance(value, bool):
        raise CacheRuleError(f"cache rule {rule}: ttl must be a duration such as 30m or 1h, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(str(value)).total_seconds()
        except InvalidDurationError:
            raise CacheRuleError(
                f"cache rule {rule}: ttl must be a duration such as 30s, 10m or 1h, not {value!r}"
            ) from None
    if seconds < 0:
        raise CacheRuleError(f"cache rule {rule}: ttl must not be negative")
    return seconds


def _flag(value: Any, rule: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise CacheRuleError(f"cache rule {rule}: {key} must be true or false, not {value!r}")


def _split_source(source: str, rule: str) -> tuple[str, str, bool]:
    """(endpoint URL, upstream repository or prefix, prefix?) of a SOURCE."""
    scheme = "https"
    rest = source.strip()
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise CacheRuleError(f"cache rule {rule}: the source's scheme must be http:// or https://")
    host, _, path = rest.partition("/")
    try:
        endpoint = hosts.parse_endpoint(f"{scheme}://{host}")
    except hosts.InvalidEndpointError:
        raise CacheRuleError(f"cache rule {rule}: {host!r} is not a registry host[:port]") from None
    prefix = path == "*" or path.endswith("/*")
    repository = path[:-2] if path.endswith("/*") else ("" if path == "*" else path)
    if not prefix and not repository:
        raise CacheRuleError(
            f"cache rule {rule}: the source must name a repository or a prefix (host/repository or host/prefix/*)"
        )
    if repository and not is_valid_repository(repository):
        raise CacheRuleError(f"cache rule {rule}: {repository!r} is not a valid repository name")
    if endpoint.host in DOCKER_HUB_NAMES:
        if scheme != "https":
            raise CacheRuleError(f"cache rule {rule}: Docker Hub is reached over https only")
        endpoint = hosts.Endpoint("https", DOCKER_HUB_API, None)
        if not prefix and "/" not in repository:
            repository = f"library/{repository}"
    return endpoint.url, repository, prefix


def make_rule(settings: Mapping[str, Any]) -> CacheRule:
    """A checked :class:`CacheRule` from a config table (or parsed ``--cache-rule``); :class:`CacheRuleError`."""
    target = str(settings.get("target") or "").strip()
    source = str(settings.get("source") or "").strip()
    rule = f"{target}={source}"
    unknown = sorted(set(settings) - set(RULE_KEYS))
    if unknown:
        raise CacheRuleError(f"cache rule {rule}: unknown key {unknown[0]!r} (keys: {', '.join(RULE_KEYS)})")
    if not target or not source:
        raise CacheRuleError(f"cache rule {rule!r}: expected TARGET=SOURCE, e.g. hub/*=docker.io/library/*")
    target_prefix = target == "*" or target.endswith("/*")
    local = target[:-2] if target.endswith("/*") else target
    if target != "*" and not is_valid_repository(local):
        raise CacheRuleError(f"cache rule {rule}: the target {target!r} is not a repository name or a prefix/*")
    endpoint, repository, source_prefix = _split_source(source, rule)
    if target_prefix != source_prefix:
        raise CacheRuleError(
            f"cache rule {rule}: a prefix target (ending in /*) needs a prefix source and a repository target a "
            "repository source"
        )
    credentials = settings.get("credentials")
    username = settings.get("username")
    password_file = settings.get("password_file")
    if credentials is not None and (username is not None or password_file is not None):
        raise CacheRuleError(f"cache rule {rule}: give credentials (a docker config entry) or username and "
                             "password_file, not both")
    if (username is None) != (password_file is None):
        raise CacheRuleError(f"cache rule {rule}: username and password_file go together")
    if (credentials is not None or username is not None) and endpoint.startswith("http://") and \
            not hosts.is_loopback_url(endpoint):
        raise CacheRuleError(f"cache rule {rule}: credentials would travel in clear text to {endpoint}; use https")
    return CacheRule(
        target=target,
        source=source,
        endpoint=endpoint,
        repository=repository,
        prefix=target_prefix,
        ttl=_duration(settings.get("ttl", DEFAULT_TTL), rule),
        credentials=str(credentials) if credentials is not None else None,
        username=str(username) if username is not None else None,
        password_file=str(password_file) if password_file is not None else None,
        allow_push=_flag(settings.get("allow_push", False), rule, "allow_push"),
    )


def parse_rule(text: str) -> CacheRule:
    """A rule written ``TARGET=SOURCE[,key=value…]`` (``--cache-rule``) or as a JSON object (a config table)."""
    return make_rule(rule_settings(text))


def rule_settings(text: str) -> dict[str, Any]:
    """The keys of a rule written ``TARGET=SOURCE[,key=value…]`` or as a JSON object, as a config table has them
    (not checked yet: :func:`make_rule` does that)."""
    value = text.strip()
    if value.startswith("{"):
        try:
            table = json.loads(value)
        except ValueError:
            raise CacheRuleError(f"cache rule {value[:80]!r} is not valid") from None
        if not isinstance(table, dict):
            raise CacheRuleError(f"cache rule {value[:80]!r} is not a table")
        return table
    head, *options = value.split(",")
    target, sep, source = head.partition("=")
    if not sep:
        raise CacheRuleError(f"cache rule {value!r}: expected TARGET=SOURCE, e.g. hub/*=docker.io/library/*")
    settings: dict[str, Any] = {"target": target, "source": source}
    for option in options:
        key, sep, item = option.partition("=")
        key = key.strip()
        if not sep or not key or key in ("target", "source"):
            raise CacheRuleError(f"cache rule {head}: option {option!r} must be key=value "
                                 "(ttl, credentials, username, password_file, allow_push)")
        settings[key] = item.strip()
    return settings


def rule_from_json(text: str) -> CacheRule:
    """A rule from :meth:`CacheRule.to_json`."""
    return CacheRule(**json.loads(text))


class CacheRules:
    """The rules of one server; answers which rule (and upstream repository) covers a local repository."""

    def __init__(self, rules: Iterable[CacheRule]) -> None:
        self.rules = sorted(rules, key=CacheRule.specificity, reverse=True)
        seen: dict[str, CacheRule] = {}
        for rule in self.rules:
            if rule.target in seen:
                raise CacheRuleError(f"cache rules {seen[rule.target].text} and {rule.text} have the same target")
            seen[rule.target] = rule

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, name: str) -> tuple[CacheRule, str] | None:
        """(rule, upstream repository) for local repository ``name``, ``None`` when no rule covers it."""
        for rule in self.rules:
            upstream = rule.upstream_name(name)
            if upstream is not None and is_valid_repository(upstream):
                return rule, upstream
        return None
