"""Reference arguments of the tag and manifest commands: ``[registry/]repo:tag`` and ``[registry/]repo@digest``."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from .connect import parse_reference
from .errors import UsageError
from .options import GlobalOptions


class Order(str, enum.Enum):
    """``--orderby`` values (the names ``az acr`` uses)."""

    time_desc = "time_desc"
    time_asc = "time_asc"

    def sdk_value(self) -> str:
        return "timedesc" if self is Order.time_desc else "timeasc"


OrderBy = Annotated[Order | None, typer.Option("--orderby", help="Sort by last update time.")]
Top = Annotated[int | None, typer.Option("--top", help="Show at most N.")]


@dataclass(frozen=True)
class Target:
    """A parsed reference plus the registry it lives on (``None``: the ``--registry`` one)."""

    registry: str | None
    repository: str
    identifier: str  # the tag or the digest


def target(text: str, options: GlobalOptions, *, tag_only: bool = False) -> Target:
    """Parse a ``REPO:TAG`` or ``REPO@DIGEST`` argument (``tag_only``: a tag is required)."""
    ref = parse_reference(text, options, need_tag_or_digest=True)
    if tag_only and (ref.digest or not ref.tag):
        raise UsageError(f"{text!r}: expected REPOSITORY:TAG")
    identifier = ref.digest or ref.tag
    assert identifier is not None
    return Target(ref.registry, ref.repository, identifier)


def repository_target(text: str, options: GlobalOptions) -> tuple[str | None, str]:
    """Parse a ``[registry/]repo`` argument: ``(registry or None for --registry, repository)``."""
    ref = parse_reference(text, options)
    if ref.tag or ref.digest:
        raise UsageError(f"{text!r}: expected a repository name, without :TAG or @DIGEST")
    return ref.registry, ref.repository


def top(items: Any, count: int | None) -> list[Any]:
    """The first ``count`` items of an iterable (all when ``count`` is None)."""
    if count is not None and count < 0:
        raise UsageError("--top must not be negative")
    return list(itertools.islice(items, count))
