"""Reading the shell and configuration blocks of the docs that tests run as written."""

from __future__ import annotations

from pathlib import Path


def fenced_block(doc: Path, language: str, containing: str = "") -> str:
    """The first fenced ``language`` block of ``doc`` that contains ``containing``."""
    text = doc.read_text()
    fence = f"```{language}\n"
    start = 0
    while (start := text.find(fence, start)) != -1:
        body = text[start + len(fence):text.index("```", start + len(fence))]
        if containing in body:
            return body
        start += len(fence)
    raise AssertionError(f"{doc.name} has no {language} block containing {containing!r}")


def replaced(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each key replaced by its value; every key must still be in the doc's text."""
    for old, new in replacements.items():
        assert old in text, f"the doc no longer says {old!r}"
        text = text.replace(old, new)
    return text
