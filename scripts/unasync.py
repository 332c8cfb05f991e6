"""Generate the sync client from the async one (``dockyard/aio/`` -> ``dockyard/_sync/``), as httpcore does.

A handful of rewrite rules turn each async source into its sync twin. ``python scripts/unasync.py`` writes the
generated files; ``python scripts/unasync.py --check`` writes nothing and exits 1 when a generated file is
missing or differs from what the rules produce (run by ``scripts/test.sh``), so the twins cannot drift.
The few real differences between the flavours live in the hand-written ``backend.py`` of each.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "dockyard"
SOURCE, TARGET = PACKAGE / "aio", PACKAGE / "_sync"
#: The modules generated from ``aio/`` (the others of each flavour are hand-written).
FILES = ("client.py", "driver.py", "download.py")

#: (pattern, replacement), applied in order to every line.
RULES: tuple[tuple[str, str], ...] = (
    (r"\bAsyncGenerator\[(.*), None\]", r"Generator[\1, None, None]"),
    (r"\basync def\b", "def"),
    (r"\basync (for|with)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\b__a(enter|exit|iter|next)__\b", r"__\1__"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\baiter_(bytes|raw)\b", r"iter_\1"),
    (r"\baclose\b", "close"),
    (r"\banext\(", "next("),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\basynchronous=True\b", "asynchronous=False"),
    (r"\bAsyncDriver\b", "SyncDriver"),
    (r"\bAsync(Generator|Iterator|ItemPaged|DownloadBlobStream)\b", r"\1"),
)
HEADER = "# Generated from dockyard/aio/{name} by scripts/unasync.py: do not edit.\n"


def unasync(text: str) -> str:
    """The sync twin of an async source text."""
    lines = []
    for line in text.splitlines(keepends=True):
        for pattern, replacement in RULES:
            line = re.sub(pattern, replacement, line)
        lines.append(line)
    return "".join(lines)


def generated(name: str) -> str:
    """The text of ``_sync/<name>`` as the rules make it from ``aio/<name>``."""
    return HEADER.format(name=name) + unasync((SOURCE / name).read_text())


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in FILES:
        target, text = TARGET / name, generated(name)
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target)
        if not check:
            target.write_text(text)
    for path in stale:
        print(f"{'stale' if check else 'wrote'}: {path.relative_to(PACKAGE.parent.parent)}")
    if check and stale:
        print("run: python scripts/unasync.py", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
