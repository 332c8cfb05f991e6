"""The text of a borderless table for output that is not a terminal, without loading rich.

:func:`dockyard.cli.output.emit_rows` and ``emit_record`` print tables with rich (``box=None``, no edge, cells
padded by one space, 400 columns wide, no styles when standard output is not a terminal). Importing rich's
console and table modules costs about as much as the rest of a short command's own code, so when standard
output is a pipe or a file, :func:`render` writes the same text itself: each cell left-aligned and padded to
its column's width, columns two spaces apart, every line as wide as the table.

It gives up (returns ``None``, and rich prints the table) whenever rich could print anything else: text rich
would read as markup or emoji codes, characters that are not printable ASCII (wide or combining characters,
line breaks, tabs), a table wider than the console, an empty column, or an environment that makes rich style
its output (``FORCE_COLOR``, ``TTY_COMPATIBLE``). Tests compare its text with rich's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

#: The console width of non-terminal output (:func:`dockyard.cli.output.stdout_console`).
WIDTH = 400
#: Columns are this far apart (one space of padding on either side; none at the table's edges).
GAP = "  "
#: Environment variables that make rich treat a pipe as a terminal, and style the text.
STYLING_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE")

_PRINTABLE = re.compile(r"[ -~]*")
#: What rich's emoji replacement looks at (``:name:``, ``:name-emoji:``); replaced only for known names.
_EMOJI_CODE = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")


#: The names of rich's emoji codes without a letter (checked against rich's table by the tests): other
#: candidates without a letter, like the ``:13:`` of ``23:13:42``, need no look-up in that table.
LETTERLESS_EMOJI = frozenset({"+1", "-1", "100", "1234", "__1"})


def _emoji_names(text: str) -> bool:
    """True when rich would replace part of ``text`` by an emoji."""
    candidates = [m.group(2).lower() for m in _EMOJI_CODE.finditer(text)]
    candidates = [name for name in candidates if name in LETTERLESS_EMOJI or any(c.isalpha() for c in name)]
    if not candidates:
        return False
    from rich._emoji_codes import EMOJI  # a dict of ~3,600 names, no rich console

    return any(name in EMOJI for name in candidates)


def _plain(text: str) -> bool:
    return _PRINTABLE.fullmatch(text) is not None and "[" not in text and not _emoji_names(text)


def render(header: Sequence[str] | None, rows: Sequence[Sequence[str]],
           env: Mapping[str, str] | None = None) -> str | None:
    """The table's text as rich prints it on a non-terminal (``None`` when only rich can say).

    ``header``: the column titles, or ``None`` for a table without a header row; ``rows``: the cells' text.
    """
    env = os.environ if env is None else env
    if any(name in env for name in STYLING_ENV):
        return None
    lines = [list(header)] if header is not None else []
    lines += [list(row) for row in rows]
    if not lines:
        return None
    count = len(lines[0])
    if count == 0 or any(len(line) != count for line in lines):
        return None
    if not all(_plain(cell) for line in lines for cell in line):
        return None
    widths = [max(len(line[i]) for line in lines) for i in range(count)]
    if 0 in widths or sum(widths) + len(GAP) * (count - 1) > WIDTH:
        return None
    return "".join(GAP.join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + "\n"
                   for line in lines)
