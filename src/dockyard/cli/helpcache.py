"""``dockyard --help`` from a cache: the text typer and rich rendered last time, for the same installation and
the same terminal.

Rendering the top-level help loads typer, rich (its markdown module pulls in markdown-it) and every command
module, for a listing that changes only when the package does. The first ``dockyard --help`` renders it as
usual and keeps a copy of exactly what it printed (:class:`Recorder`); later ones print that copy, without
importing typer or any command (:func:`lookup`, called by :mod:`dockyard.cli.main` for its
``HELP_ARGS``).

A copy is used only when everything its text depends on is the same (:func:`key`):

- the installation: dockyard's version, the files of the ``dockyard.cli`` package (name, size, modification
  time, inode), the python running it, and typer's and rich's installed versions and package files;
- the output: whether standard output is a terminal and its encoding, the terminal size of each standard
  stream, and the environment variables rich and typer read (``COLUMNS``, ``TERM``, ``NO_COLOR``,
  ``FORCE_COLOR``, ``TERMINAL_WIDTH``, the locale ...).

Copies live in ``$XDG_CACHE_HOME/dockyard/`` (else ``~/.cache/dockyard/``), one file per output setting, the
key on its first line. Without a usable cache directory (``HOME`` unset, a read-only home), nothing is cached
and the help is rendered every time. Copies are kept only of typer's rich help written as UTF-8 text, the way
this module records it (``TYPER_USE_RICH=0`` and other encodings are rendered every time).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import PathFinder
from typing import Any, TextIO

#: Environment variables that change what typer and rich print (or whether they style it).
ENV_KEYS = (
    "COLUMNS", "LINES", "TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
    "TERMINAL_WIDTH", "GITHUB_ACTIONS", "PY_COLORS", "JUPYTER_COLUMNS", "JUPYTER_LINES",
    "DATABRICKS_RUNTIME_VERSION", "UNICODE_VERSION", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG",
)
#: Prefixes of further variables of typer and rich (``TYPER_USE_RICH``, ``_TYPER_FORCE_DISABLE_TERMINAL`` ...).
ENV_PREFIXES = ("TYPER_", "_TYPER_", "RICH_")
#: The packages whose installed files shape the text besides ``dockyard.cli`` itself.
RENDERERS = ("typer", "rich")
#: At most this many copies (terminal sizes, modes) are kept; the oldest go first.
MAX_FILES = 16

# Paths are plain strings here: pathlib (and the urllib.parse and ipaddress it imports) would cost more than
# printing the help.
_CLI_DIR = os.path.dirname(os.path.abspath(__file__))


def cache_dir(env: Mapping[str, str] | None = None) -> str | None:
    """``$XDG_CACHE_HOME/dockyard`` (an absolute ``XDG_CACHE_HOME``), else ``$HOME/.cache/dockyard``; ``None``
    without either."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return os.path.join(xdg, "dockyard")
    home = env.get("HOME", "")
    return os.path.join(home, ".cache", "dockyard") if os.path.isabs(home) else None


def _files(directory: str) -> list[str]:
    """``name:size:mtime:inode`` of the python files of ``directory`` (not recursive), sorted."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".py"):
                stat = entry.stat()
                found.append(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}:{entry.inode()}")
    return sorted(found)


def _renderer(name: str) -> str | None:
    """Where ``name`` is installed, its distribution's version (the ``.dist-info`` beside it) and the size,
    modification time and inode of its ``__init__.py``; ``None`` when it is not a plain installed package."""
    spec = PathFinder.find_spec(name)
    if spec is None or not spec.origin or not spec.submodule_search_locations:
        return None
    origin = spec.origin
    stat = os.stat(origin)
    prefix = f"{name}-"
    with os.scandir(os.path.dirname(os.path.dirname(origin))) as entries:
        dists = sorted(e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(".dist-info"))
    return f"{origin}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{','.join(dists)}"


def installation(cli_dir: str = _CLI_DIR) -> str | None:
    """What the help text depends on in the installed software, with the command modules in ``cli_dir``
    (``None``: not something to cache against)."""
    from .. import __version__

    renderers = [_renderer(name) for name in RENDERERS]
    if None in renderers:
        return None
    return "|".join([f"dockyard {__version__}", sys.version, sys.executable, cli_dir,
                     *_files(cli_dir), *(r for r in renderers if r)])


def _terminal_size(fd: int) -> str:
    try:
        size = os.get_terminal_size(fd)
    except (AttributeError, ValueError, OSError):
        return "-"
    return f"{size.columns}x{size.lines}"


def output_setting(stdout: TextIO, env: Mapping[str, str]) -> str | None:
    """What the help text depends on in this process's output (``None``: not a setting that is cached)."""
    encoding = (getattr(stdout, "encoding", None) or "").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8") or env.get("TYPER_USE_RICH", "") not in ("", "1", "true", "True"):
        return None
    try:
        tty = stdout.isatty()
    except ValueError:  # closed
        return None
    variables = sorted((name, value) for name, value in env.items()
                       if name in ENV_KEYS or name.startswith(ENV_PREFIXES))
    sizes = ",".join(_terminal_size(fd) for fd in (0, 1, 2))
    return f"tty={tty} encoding={encoding} sizes={sizes} env={variables!r}"


def _fnv1a(data: bytes) -> int:
    """A 32-bit FNV-1a hash: names a cache file (the key inside it is what is compared)."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def key(stdout: TextIO | None = None, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The cache file and the key its first line must hold for this installation and output; ``None`` when
    the help is not cached here."""
    env = os.environ if env is None else env
    stdout = sys.stdout if stdout is None else stdout
    directory = cache_dir(env)
    if directory is None:
        return None
    try:
        setting = output_setting(stdout, env)
        installed = installation() if setting is not None else None
    except OSError:
        return None
    if setting is None or installed is None:
        return None
    name = f"help-{_fnv1a(setting.encode()):08x}.txt"
    return os.path.join(directory, name), f"{installed}#{setting}".replace("\n", " ")


def lookup(stdout: TextIO | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The cached help for this installation and output, or ``None``."""
    found = key(stdout, env)
    if found is None:
        return None
    path, expected = found
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if f.readline() != expected + "\n":
                return None
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def store(text: str, stdout: TextIO | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """Keep ``text`` as the help of this installation and output; the file written, or ``None`` when there is
    no cache here or it cannot be written (never an error)."""
    found = key(stdout, env)
    if found is None or not text:
        return None
    path, expected = found
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(temporary, "w", encoding="utf-8", newline="") as f:
            f.write(expected + "\n" + text)
        os.replace(temporary, path)
        _prune(directory)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return None
    return path


def _prune(directory: str) -> None:
    """Keep the :data:`MAX_FILES` most recently written copies."""
    with os.scandir(directory) as entries:
        copies = [(e.stat().st_mtime_ns, e.path) for e in entries
                  if e.name.startswith("help-") and e.name.endswith(".txt")]
    for _, old in sorted(copies, reverse=True)[MAX_FILES:]:
        os.unlink(old)


class Recorder:
    """Standard output as it is, also keeping what is written to it (:attr:`text`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        self._parts.append(text)
        return written

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
