"""``dockyard serve --config FILE`` and ``DOCKYARD_<KEY>``: every ``serve`` flag from a TOML file or the environment.

Built on click's own layers, from the command's parameters, so a flag added to ``serve`` gets its key without
further work: the file's table becomes the context's ``default_map`` (read by the eager ``--config`` option,
before any other option is processed) and ``auto_envvar_prefix="DOCKYARD"`` makes click read ``DOCKYARD_<KEY>``.
Click then takes each value from the command line, else the environment, else the file, else the default, and
converts and range-checks it as it does a flag.

The file's keys are checked strictly (a key that names no flag is an error naming it). ``DOCKYARD_*`` variables
are not: the other commands read ``DOCKYARD_REGISTRY`` and others, so only the variables that name a ``serve``
key are used.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import tomllib
import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import core as click_core
except ImportError:  # pragma: no cover
    from click import core as click_core  # type: ignore[no-redef]

#: The prefix of the environment variables, ``DOCKYARD_<KEY>``.
ENV_PREFIX = "DOCKYARD"
#: Parameters that choose the configuration rather than being part of it (no key in the file).
NOT_KEYS = frozenset({"config_file", "print_config"})
#: A key whose value --print-config masks.
SECRET_KEY = re.compile(r"password|secret|credential", re.IGNORECASE)
MASK = "********"
#: The password of a URL's user information (``postgresql://user:PASSWORD@host/db``), masked in any value.
URL_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def keys(command: click_core.Command) -> dict[str, click_core.Parameter]:
    """The configuration keys of ``command``: each option's name (``data_dir`` for ``--data-dir``)."""
    return {
        p.name: p
        for p in command.params
        if p.name and p.name not in NOT_KEYS and getattr(p, "param_type_name", "") == "option"
    }


def _value_type(param: click_core.Parameter) -> Any:
    """The Python type of ``param``'s value (``int`` for ``--port``), None when unknown."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None and param.default is not None:
        annotation = type(param.default)
    return annotation


def _type_error(param: click_core.Parameter, value: Any) -> str | None:
    """Why the TOML ``value`` does not suit ``param`` (None when it does): TOML values are typed, so a port must
    be an integer, not a string or a boolean."""
    kind = _value_type(param)
    if getattr(param, "multiple", False):
        return None if isinstance(value, list) else "a list"
    if kind is bool or getattr(param, "is_flag", False):
        return None if isinstance(value, bool) else "true or false"
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if kind is float:
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "a number"
    if kind is None:
        return None
    return None if isinstance(value, str) else "a string"


def read_file(path: Path, command: click_core.Command) -> dict[str, Any]:
    """The ``serve`` settings in the TOML file at ``path``; a one-line error (exit 2) for anything unusable."""
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except OSError as exc:
        _fail(f"cannot read config file {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        _fail(f"config file {path} is not valid TOML: {exc}")
    known = keys(command)
    settings: dict[str, Any] = {}
    if "cache_rules" in table:
        table = {**table, "cache_rules": _cache_rule_tables(path, table["cache_rules"])}
    for key, value in table.items():
        param = known.get(key)
        if param is None:
            _fail(f"config file {path}: unknown key {key!r} (keys are the flags of `dockyard serve`, "
                  "with _ for -)")
        assert param is not None
        problem = _type_error(param, value)
        if problem:
            _fail(f"config file {path}: key {key!r} must be {problem}, not {value!r}")
        settings[key] = value
    return settings


def _cache_rule_tables(path: Path, value: Any) -> list[str]:
    """``[[cache_rules]]`` (an array of tables, or of ``TARGET=SOURCE`` strings) as ``--cache-rule`` values: a
    table is carried as its JSON (checked with the flags' values when ``serve`` starts)."""
    if not isinstance(value, list):
        _fail(f"config file {path}: cache_rules must be an array of tables ([[cache_rules]])")
    rules: list[str] = []
    for item in value:
        if isinstance(item, dict):
            rules.append(json.dumps(item))
        elif isinstance(item, str):
            rules.append(item)
        else:
            _fail(f"config file {path}: each [[cache_rules]] entry must be a table with target and source")
    return rules


def load_config(ctx: click_core.Context, param: click_core.Parameter, value: Path | str | None) -> Path | None:
    """Callback of the eager ``--config`` option: make the file's settings the defaults of every other option."""
    if value is None or ctx.resilient_parsing:
        return None
    path = Path(value)
    assert ctx.command is not None
    ctx.default_map = {**(ctx.default_map or {}), **read_file(path, ctx.command)}
    return path


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


#: Where a value came from, by the name of click's ``ParameterSource``.
_SOURCES = {"COMMANDLINE": "flag", "ENVIRONMENT": "environment", "DEFAULT_MAP": "config file", "DEFAULT": "default"}


def _toml(value: Any) -> str:
    """``value`` (a string, number, boolean or a list of them) as a TOML value."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return _shown(URL_PASSWORD.sub(rf"\g<1>{MASK}@", value) if isinstance(value, str) else value)


def _rule_tables(rules: list[str] | tuple[str, ...], origin: str) -> list[str]:
    """``cache_rules`` as ``[[cache_rules]]`` tables, the form a config file gives them (``--cache-rule`` values
    taken apart into their keys)."""
    from ..server.cache.rules import CacheRuleError, rule_settings

    lines = []
    for rule in rules:
        try:
            settings = rule_settings(rule)
        except CacheRuleError as exc:
            _fail(str(exc))
        lines += ["", f"[[cache_rules]]  # {origin}"]
        lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    return lines


def effective(ctx: click_core.Context) -> str:
    """The configuration ``serve`` runs with, as TOML (usable as a ``--config`` file), each line saying where its
    value came from; values of keys naming a password, secret or credentials masked. Cache rules come last, as
    ``[[cache_rules]]`` tables (a TOML table ends the top-level keys)."""
    assert ctx.command is not None
    lines = []
    tables: list[str] = []
    for key in keys(ctx.command):
        value = ctx.params.get(key)
        source = ctx.get_parameter_source(key)
        origin = _SOURCES.get(getattr(source, "name", ""), "default")
        if origin == "environment":
            origin = f"environment {ENV_PREFIX}_{key.upper()}"
        if value is None or (isinstance(value, list | tuple) and not value):
            lines.append(f"# {key} is not set")
            continue
        if key == "cache_rules":
            tables += _rule_tables(value, origin)
            continue
        shown = _shown(MASK) if SECRET_KEY.search(key) else _toml(value)
        lines.append(f"{key} = {shown}  # {origin}")
    return "\n".join(lines + tables)


def print_effective(ctx: click_core.Context) -> None:
    """``--print-config``: print :func:`effective` and stop."""
    sys.stdout.write(effective(ctx) + "\n")
    sys.stdout.flush()
