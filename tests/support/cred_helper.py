"""A tiny ``docker-credential-<name>`` program for tests, and a function that installs it on disk.

The program speaks the docker credential-helper protocol: ``get`` reads a server URL on stdin and prints
``{"ServerURL", "Username", "Secret"}``; ``store`` reads that JSON on stdin; ``erase`` reads a server URL;
``list`` prints ``{url: username}``. Its secrets live in the JSON file named by ``$DOCKYARD_TEST_HELPER_STORE``,
and each invocation appends ``<action> <server>`` to ``$DOCKYARD_TEST_HELPER_LOG`` so tests can see it ran.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

STORE_ENV = "DOCKYARD_TEST_HELPER_STORE"
LOG_ENV = "DOCKYARD_TEST_HELPER_LOG"


def _load(path: Path) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str]) -> int:
    """The helper program itself."""
    action = argv[1] if len(argv) > 1 else ""
    store = Path(os.environ[STORE_ENV])
    secrets = _load(store)
    data = sys.stdin.read()
    server = data.strip() if action in ("get", "erase") else ""
    if LOG_ENV in os.environ:
        with open(os.environ[LOG_ENV], "a") as log:
            log.write(f"{action} {server}\n")
    if action == "get":
        entry = secrets.get(server)
        if entry is None:
            print("credentials not found in native keychain")
            return 1
        print(json.dumps({"ServerURL": server, "Username": entry["Username"], "Secret": entry["Secret"]}))
        return 0
    if action == "store":
        entry = json.loads(data)
        secrets[entry["ServerURL"]] = {"Username": entry["Username"], "Secret": entry["Secret"]}
        store.write_text(json.dumps(secrets))
        return 0
    if action == "erase":
        secrets.pop(server, None)
        store.write_text(json.dumps(secrets))
        return 0
    if action == "list":
        print(json.dumps({url: entry["Username"] for url, entry in secrets.items()}))
        return 0
    print(f"unknown action {action!r}", file=sys.stderr)
    return 2


def install(bin_dir: Path, name: str) -> Path:
    """Write ``docker-credential-<name>`` (this file, with a shebang for this interpreter) into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    program.write_text(f"#!{sys.executable}\n" + Path(__file__).read_text())
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return program


if __name__ == "__main__":
    sys.exit(main(sys.argv))
