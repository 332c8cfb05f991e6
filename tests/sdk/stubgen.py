"""Writes the ``client.pyi`` stubs of both clients from the one operation table.

The clients' methods are bound at runtime from :class:`dockyard.protocol.api.RegistryApi`; type checkers
and IDEs read the stubs instead. Both stubs are rendered here from the runtime signatures (the shared
operations, the constructor, and the few methods each client class defines itself), so there is one
source for every signature. ``python -m tests.sdk.stubgen`` rewrites them; ``test_typed_surface.py``
fails when a committed stub is not what this module renders.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dockyard
from dockyard._sync.client import ContainerRegistryClient as SyncClient
from dockyard.aio.client import ContainerRegistryClient as AsyncClient
from dockyard.protocol.api import Operation, RegistryApi

SRC = Path(dockyard.__file__).parent
_P = inspect.Parameter

HEADER = '''"""Static types of ``{title}``.

The runtime binds the operations declared once in :mod:`dockyard.protocol.api`; this stub spells out each
method's signature for type checkers and IDEs. Generated from the runtime signatures by
``python -m tests.sdk.stubgen``: do not edit by hand.
"""

import os
from collections.abc import Callable
from typing import IO, Any, overload

from typing_extensions import Self

from ..models import (
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactTagOrder,
    ArtifactTagProperties,
    GetManifestResult,
    RepositoryProperties,
)
from ..oci.manifest import Descriptor
from .download import {stream}
from .paging import {paged}

class ContainerRegistryClient:
    """{summary}"""

'''


@dataclass(frozen=True)
class Flavour:
    """How one client presents the shared operations."""

    cls: type[RegistryApi]
    path: Path
    title: str
    paged: str  # the pager class listings return
    stream: str  # the download stream class
    is_async: bool


FLAVOURS = [
    Flavour(SyncClient, SRC / "_sync" / "client.pyi", "dockyard.ContainerRegistryClient", "ItemPaged",
            "DownloadBlobStream", False),
    Flavour(AsyncClient, SRC / "aio" / "client.pyi", "dockyard.aio.ContainerRegistryClient", "AsyncItemPaged",
            "AsyncDownloadBlobStream", True),
]


def _summary(func: Callable[..., Any]) -> str:
    return inspect.cleandoc(func.__doc__ or "").split("\n\n")[0].replace("\n", " ")


def _render_params(params: list[inspect.Parameter]) -> list[str]:
    out = ["self"]
    star = False
    for p in params:
        if p.kind is _P.KEYWORD_ONLY and not star:
            out.append("*")
        star = star or p.kind in (_P.KEYWORD_ONLY, _P.VAR_POSITIONAL)
        prefix = {_P.VAR_POSITIONAL: "*", _P.VAR_KEYWORD: "**"}.get(p.kind, "")
        text = f"{prefix}{p.name}: {p.annotation}"
        if p.default is not _P.empty:
            text += f" = {json.dumps(p.default) if isinstance(p.default, str) else repr(p.default)}"
        out.append(text)
    return out


def _render(name: str, params: list[inspect.Parameter], returns: str, *, is_async: bool = False,
            doc: str | None = None, decorator: str | None = None) -> str:
    lines = [f"    @{decorator}"] if decorator else []
    head = f"    {'async ' if is_async else ''}def {name}("
    rendered = _render_params(params)
    one_line = f"{head}{', '.join(rendered)}) -> {returns}:"
    if len(one_line) + 4 <= 120:
        lines.append(one_line)
    else:
        lines.append(head)
        lines += [f"        {p}," for p in rendered]
        lines.append(f"    ) -> {returns}:")
    lines[-1] += f'\n        """{doc}"""' if doc else " ..."
    return "\n".join(lines) + "\n"


def _operation(name: str, op: Operation, flavour: Flavour) -> str:
    signature = inspect.signature(op.func)
    params = list(signature.parameters.values())[1:]
    result = str(signature.return_annotation)
    inner = result[result.find("[") + 1 : result.rfind("]")]
    returns = f"{flavour.paged}[{inner}]" if op.paged else inner
    is_async = flavour.is_async and not op.paged
    names = [p.name for p in params]
    if "properties" not in names:
        return _render(name, params, returns, is_async=is_async, doc=_summary(op.func))
    # update_*_properties: a properties object, or can_* keywords (as azure-containerregistry declares them).
    cut = names.index("properties")
    leading, properties, keywords = params[:cut], params[cut], params[cut + 1 : -1]
    by_object = properties.replace(annotation=str(properties.annotation).removesuffix(" | None"), default=_P.empty)
    return "".join(
        _render(name, leading + variant + [params[-1]], returns, is_async=is_async, decorator="overload")
        for variant in ([by_object], keywords)
    )


def _own_method(name: str, flavour: Flavour) -> str:
    method = vars(flavour.cls)[name]
    signature = inspect.signature(method)
    returns = "Self" if name in ("__enter__", "__aenter__") else str(signature.return_annotation)
    doc = _summary(method) if method.__doc__ else None
    return _render(name, list(signature.parameters.values())[1:], returns,
                   is_async=inspect.iscoroutinefunction(method), doc=doc)


def render(flavour: Flavour) -> str:
    """The stub text of ``flavour``'s client."""
    init = inspect.signature(RegistryApi.__init__)
    parts = [
        HEADER.format(title=flavour.title, stream=flavour.stream, paged=flavour.paged,
                      summary=_summary(flavour.cls)),
        _render("__init__", list(init.parameters.values())[1:], "None"),
        f"    @property\n    def endpoint(self) -> str:\n        \"\"\"{_summary(RegistryApi.endpoint.fget)}\"\"\"\n",
    ]
    own = [n for n, v in vars(flavour.cls).items() if inspect.isfunction(v) and (n.startswith("__") or n[0] != "_")]
    parts += [_own_method(name, flavour) for name in own if name not in vars(RegistryApi) or name == "__init__"]
    parts += [_operation(name, op, flavour) for name, op in vars(RegistryApi).items() if isinstance(op, Operation)]
    return "".join(parts)


def main() -> int:
    for flavour in FLAVOURS:
        flavour.path.write_text(render(flavour))
        print(f"wrote {flavour.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
