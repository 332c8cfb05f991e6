"""``dockyard --help`` printed from its cache (:mod:`dockyard.cli.helpcache`) is byte for byte what typer
renders for the same installation and output: to a pipe and to a terminal, kept apart by terminal size and
environment, rendered again when the installation changes, and printed anyway without a usable cache."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from dockyard.cli import helpcache

#: Runs ``dockyard ARGS`` through the console script's entry point; says on stderr whether typer was loaded.
_PROBE = """
import sys
from dockyard.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(f"status={code} typer={'typer' in sys.modules}", file=sys.stderr)
"""


def _env(cache: Path | None, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **extra}
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return env


def _help(env: dict[str, str]) -> tuple[str, str]:
    """stdout and the probe's line of ``dockyard --help`` to a pipe."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, "--help"], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc.stdout, proc.stderr.strip().splitlines()[-1]


def _copies(cache: Path) -> list[Path]:
    return sorted((cache / "dockyard").glob("help-*.txt"))


def test_cached_help_is_what_typer_renders(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rendered, how = _help(_env(cache))
    assert how == "status=0 typer=True"
    assert "Usage: dockyard" in rendered and "tag" in rendered
    assert len(_copies(cache)) == 1
    cached, how = _help(_env(cache))
    assert how == "status=0 typer=False"  # printed from the cache
    assert cached == rendered
    uncached, how = _help(_env(None))  # no HOME, no XDG_CACHE_HOME: rendered every time
    assert how == "status=0 typer=True"
    assert uncached == rendered


def test_each_width_and_environment_has_its_own_copy(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    wide, _ = _help(_env(cache, COLUMNS="150"))
    narrow, how = _help(_env(cache, COLUMNS="70"))
    assert how == "status=0 typer=True"  # another width: rendered, not the 150-column copy
    assert wide != narrow and max(map(len, narrow.splitlines())) <= 70
    assert len(_copies(cache)) == 2
    assert _help(_env(cache, COLUMNS="70")) == (narrow, "status=0 typer=False")
    forced, how = _help(_env(cache, COLUMNS="70", FORCE_COLOR="1"))
    assert how == "status=0 typer=True" and "\x1b[" in forced
    plain, how = _help(_env(cache, COLUMNS="70", TYPER_USE_RICH="0"))  # click's help: never cached
    assert how == "status=0 typer=True" and plain != narrow
    assert _help(_env(cache, COLUMNS="70", TYPER_USE_RICH="0"))[1] == "status=0 typer=True"


def test_a_copy_from_another_installation_is_rendered_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rendered, _ = _help(_env(cache))
    (copy,) = _copies(cache)
    key, _, _ = copy.read_text(encoding="utf-8").partition("\n")
    copy.write_text(key.replace("dockyard ", "dockyard 0.0.0-older ", 1) + "\nstale help\n", encoding="utf-8")
    again, how = _help(_env(cache))
    assert how == "status=0 typer=True" and again == rendered
    assert copy.read_text(encoding="utf-8") == key + "\n" + rendered  # rewritten for this installation


def test_the_key_follows_the_command_modules(tmp_path: Path) -> None:
    """A changed, added or removed file of the cli package changes the installation key."""
    cli = tmp_path / "cli"
    shutil.copytree(Path(helpcache.__file__).parent, cli, ignore=shutil.ignore_patterns("__pycache__"))
    before = helpcache.installation(str(cli))
    module = cli / "tag.py"
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = helpcache.installation(str(cli))
    (cli / "extra.py").write_text("")
    added = helpcache.installation(str(cli))
    assert len({before, touched, added}) == 3
    assert helpcache.installation(str(cli)) == added


@pytest.mark.parametrize("where", ["a file", "unset"])
def test_help_without_a_usable_cache_directory(tmp_path: Path, where: str) -> None:
    if where == "a file":  # the cache directory cannot be created, even by root
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        env = _env(blocker / "cache")
    else:
        env = _env(None)
    first, how = _help(env)
    assert how == "status=0 typer=True" and "Usage: dockyard" in first
    assert _help(env) == (first, "status=0 typer=True")


def _in_terminal(env: dict[str, str], columns: int) -> tuple[bytes, str]:
    """What ``dockyard --help`` writes to a terminal of ``columns`` x 40, and the probe's line."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, "--help"], stdin=follower, stdout=follower,
                            stderr=subprocess.PIPE, env=env)
    os.close(follower)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        _, err = proc.communicate(timeout=60)
    return out, err.decode().strip().splitlines()[-1]


def test_cached_help_in_a_terminal_is_what_typer_renders(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = _env(cache, TERM="xterm-256color")
    rendered, how = _in_terminal(env, 100)
    assert how == "status=0 typer=True" and b"\x1b[" in rendered  # styled for the terminal
    assert _in_terminal(env, 100) == (rendered, "status=0 typer=False")
    wider, how = _in_terminal(env, 130)
    assert how == "status=0 typer=True" and wider != rendered
    assert _in_terminal({**env, "XDG_CACHE_HOME": str(tmp_path / "other")}, 100)[0] == rendered
