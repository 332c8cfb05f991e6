"""Tables printed to a pipe or a file without rich (:mod:`dockyard.cli.plaintable`) read exactly as rich prints
them there: rich itself is the reference, on the tables the commands print and on generated ones."""

from __future__ import annotations

import io

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dockyard.cli import plaintable
from dockyard.cli.output import plain_console, rich_table

DIGEST = "sha256:" + "ab" * 32
TIME = "2026-11-30T23:13:42.261025+00:00"


def _rich_text(header: list[str] | None, rows: list[list[str]]) -> str:
    out = io.StringIO()
    plain_console(out).print(rich_table(header, rows))
    return out.getvalue()


def _check(header: list[str] | None, rows: list[list[str]]) -> str | None:
    text = plaintable.render(header, rows, env={})
    if text is not None:
        assert text == _rich_text(header, rows)
    return text


def test_the_tables_of_the_commands_are_printed_without_rich() -> None:
    tags = [["v1", DIGEST, TIME, "true", "true"], ["latest", DIGEST, "", "false", "true"]]
    assert _check(["TAG", "DIGEST", "UPDATED", "DELETE", "WRITE"], tags) is not None
    assert _check(["TAG", "DIGEST", "UPDATED", "DELETE", "WRITE"], []) is not None  # no tags: the header alone
    record = [["repository", "library/hello"], ["digest", DIGEST], ["created_on", TIME], ["tags", "v1, latest"],
              ["media_type", "application/vnd.oci.image.manifest.v1+json"], ["architecture", ""]]
    assert _check(None, record) is not None


def test_rich_prints_what_it_would_style_or_replace() -> None:
    """Markup, emoji codes, wide and control characters, tables wider than the console: rich's own output."""
    for cell in ("[bold]x[/bold]", "a :smile: b", ":100:", "日本", "é", "two\nlines", "tab\there", "x" * 401):
        assert plaintable.render(["A"], [[cell]], env={}) is None, cell
    assert plaintable.render(["A"], [["x"]], env={"FORCE_COLOR": "1"}) is None
    assert plaintable.render(["A"], [["x"]], env={"TTY_COMPATIBLE": "1"}) is None
    assert plaintable.render(["A", "B"], [["x" * 200, "y" * 199]], env={}) is None  # 401 columns with the gap
    assert _check(["A", "B"], [["x" * 200, "y" * 198]]) is not None  # exactly 400


def test_the_emoji_names_without_a_letter_are_rich_s() -> None:
    from rich._emoji_codes import EMOJI

    letterless = {name for name in EMOJI if not any(c.isalpha() for c in name)}
    assert letterless == plaintable.LETTERLESS_EMOJI
    for name in plaintable.LETTERLESS_EMOJI:
        assert plaintable.render(["A"], [[f"x:{name}:y"]], env={}) is None


_PIECES = [*"ab:Z09 -_./+@[]\\é\t日", "smile", "100", "+1", "__1", "x" * 90]
_CELL = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(st.none(), st.lists(st.text(alphabet="ABCDEFGHIJ _", min_size=1, max_size=12),
                                            min_size=1, max_size=5)),
       data=st.data())
@example(header=None, data=None)
def test_generated_tables_read_as_rich_prints_them(header: list[str] | None, data: st.DataObject | None) -> None:
    count = len(header) if header is not None else 2
    if data is None:
        rows = [[" lead", "trail "], ["", ""], ["  ", "x"]]
    else:
        rows = data.draw(st.lists(st.lists(_CELL, min_size=count, max_size=count), max_size=6))
    _check(header, rows)
