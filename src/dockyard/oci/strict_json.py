"""Bounded, strict JSON parsing for untrusted bodies (manifests, image configs, request bodies).

Python's ``json`` accepts what a registry must refuse and fails badly on hostile input: deep nesting raises
``RecursionError``, an integer of more than 4,300 digits raises a bare ``ValueError``, ``NaN``/``Infinity``
and lone surrogates (``"\\ud800"``) parse, and bytes in UTF-16 or UTF-32 are silently accepted. Every JSON
body read from the network goes through :func:`parse_json`, which raises :class:`InvalidJSONError` instead.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting of arrays and objects accepted (a manifest needs five levels).
MAX_DEPTH = 64
#: Integers must fit a signed 64-bit column (blob sizes are stored in SQLite).
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
#: More digits than any 64-bit integer has: refused before ``int()`` is called.
_MAX_INT_DIGITS = 20

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_INNERMOST = re.compile(rb"\[\]|\{\}")


class InvalidJSONError(ValueError):
    """Bytes that are not strict, bounded JSON."""


def _nesting_exceeds(body: bytes, max_depth: int) -> bool:
    """True when arrays/objects nest deeper than ``max_depth`` (checked without recursion, in C-speed passes)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", body))
    # Each pass removes the innermost level of every bracket pair; a well-formed document is empty after at
    # most ``depth`` passes. A pass that removes nothing means unbalanced brackets: the parser reports those.
    for _ in range(max_depth):
        reduced = _INNERMOST.sub(b"", brackets)
        if not reduced or reduced == brackets:
            return False
        brackets = reduced
    return True


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise InvalidJSONError(f"integer {text[:24]}… is out of range (signed 64-bit)")
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise InvalidJSONError(f"integer {text} is out of range (signed 64-bit)")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSONError(f"number {text[:24]} is out of range")
    return value


def _parse_constant(text: str) -> Any:
    raise InvalidJSONError(f"{text} is not valid JSON")


def _check_strings(document: Any) -> None:
    """Refuse strings (and keys) holding lone surrogates, which no UTF-8 text can carry (iterative walk)."""
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            texts: Any = (node,)
        elif isinstance(node, dict):
            texts = node.keys()
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
            continue
        else:
            continue
        for text in texts:
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidJSONError("a string holds a lone surrogate (\\ud800-\\udfff)") from None


def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``body`` as strict JSON: UTF-8 only, nesting at most ``max_depth``, integers within signed 64 bits,
    finite numbers only, no ``NaN``/``Infinity``, no lone surrogates. Raises :class:`InvalidJSONError`."""
    if _nesting_exceeds(body, max_depth):
        raise InvalidJSONError(f"JSON nests deeper than {max_depth} levels")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSONError(f"JSON must be UTF-8: {exc}") from None
    try:
        document = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except InvalidJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidJSONError(f"not valid JSON: {exc}") from None
    _check_strings(document)
    return document
