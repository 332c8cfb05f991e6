"""The typed surface of both clients (``client.pyi``) matches what the runtime binds.

The clients' methods are bound at runtime from one operation table (:mod:`dockyard.protocol.api`); the
``.pyi`` stubs next to the client modules are what type checkers and IDEs read. They are generated from the
runtime signatures (:mod:`tests.sdk.stubgen`). These tests fail when a committed stub is stale, and, checked
independently of the generator, when stub and runtime drift apart: a method missing on one side, a
parameter renamed, moved, made keyword-only, given another default, or a coroutine declared as a plain
method (or the reverse).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dockyard
import dockyard.aio
from tests.sdk.stubgen import FLAVOURS, Flavour, render

SRC = Path(dockyard.__file__).parent
_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    name: str
    kind: inspect._ParameterKind
    default: Any


@dataclass
class StubMethod:
    params: list[list[Param]]  # one list per overload (or one for a plain def)
    is_async: bool
    is_property: bool
    overloaded: bool


def _stub_params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Param]:
    args = node.args
    positional = args.posonlyargs + args.args
    defaults: list[Any] = [_NO_DEFAULT] * (len(positional) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults
    ]
    params = [
        Param(a.arg, inspect.Parameter.POSITIONAL_ONLY if a in args.posonlyargs else
              inspect.Parameter.POSITIONAL_OR_KEYWORD, d)
        for a, d in zip(positional, defaults, strict=True)
    ]
    if args.vararg:
        params.append(Param(args.vararg.arg, inspect.Parameter.VAR_POSITIONAL, _NO_DEFAULT))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(Param(a.arg, inspect.Parameter.KEYWORD_ONLY,
                            _NO_DEFAULT if d is None else ast.literal_eval(d)))
    if args.kwarg:
        params.append(Param(args.kwarg.arg, inspect.Parameter.VAR_KEYWORD, _NO_DEFAULT))
    return params[1:]  # without self


def stub_surface(path: Path) -> dict[str, StubMethod]:
    """The methods of ``ContainerRegistryClient`` as the stub at ``path`` declares them."""
    tree = ast.parse(path.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ContainerRegistryClient"]
    surface: dict[str, StubMethod] = {}
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        decorators = {ast.unparse(d) for d in node.decorator_list}
        entry = surface.setdefault(node.name, StubMethod([], isinstance(node, ast.AsyncFunctionDef),
                                                         "property" in decorators, "overload" in decorators))
        assert entry.is_async == isinstance(node, ast.AsyncFunctionDef), node.name
        entry.params.append(_stub_params(node))
    return surface


def _runtime_params(func: Any) -> list[Param]:
    return [Param(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


def runtime_surface(client: Any) -> dict[str, tuple[list[Param], bool]]:
    """Public methods of a live client: parameters (without ``self``) and whether each is a coroutine function."""
    names = [n for n in dir(client) if not n.startswith("_")]
    names += [n for n in ("__init__", "__enter__", "__exit__", "__aenter__", "__aexit__") if hasattr(client, n)]
    surface = {}
    for name in names:
        if isinstance(inspect.getattr_static(type(client), name, None), property):
            surface[name] = ([], False)
            continue
        method = getattr(client, name)
        if callable(method):
            surface[name] = (_runtime_params(method), inspect.iscoroutinefunction(method))
    return surface


def _check_overloads(name: str, overloads: list[list[Param]], runtime: list[Param]) -> None:
    """Each overload names runtime parameters (same kind; same default where it gives one) or what the runtime
    takes through ``**kwargs``; every required runtime parameter is in each overload, and every named one in
    at least one."""
    by_name = {p.name: p for p in runtime}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in runtime)
    for stub in overloads:
        for p in stub:
            if p.name in by_name:
                found = by_name[p.name]
                assert p.kind == found.kind, f"{name}: {p} != {found}"
                assert p.default is _NO_DEFAULT or p.default == found.default, f"{name}: {p} != {found}"
            else:
                assert p.kind is inspect.Parameter.KEYWORD_ONLY and takes_kwargs, f"{name}: runtime lacks {p.name}"
        required = [p.name for p in runtime if p.default is _NO_DEFAULT and p.kind in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        assert [p.name for p in stub][: len(required)] == required, name
    named = {p.name for p in runtime if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert named <= {p.name for stub in overloads for p in stub}, name


CLIENTS = {
    "sync": (dockyard.ContainerRegistryClient, SRC / "_sync" / "client.pyi"),
    "async": (dockyard.aio.ContainerRegistryClient, SRC / "aio" / "client.pyi"),
}


@pytest.fixture(params=sorted(CLIENTS))
def surfaces(request: pytest.FixtureRequest) -> Any:
    cls, stub_path = CLIENTS[request.param]
    client = cls("http://127.0.0.1:9")  # never contacted: the clients connect on first use
    try:
        yield stub_surface(stub_path), runtime_surface(client)
    finally:
        closing = client.close()
        if inspect.isawaitable(closing):
            asyncio.run(closing)


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.title)
def test_stubs_are_current(flavour: Flavour) -> None:
    assert flavour.path.read_text() == render(flavour), "stale stub: run python -m tests.sdk.stubgen"


def test_same_public_names(surfaces: Any) -> None:
    stub, runtime = surfaces
    assert sorted(stub) == sorted(runtime)


def test_same_parameters_and_coroutines(surfaces: Any) -> None:
    stub, runtime = surfaces
    for name, declared in stub.items():
        params, is_coroutine = runtime[name]
        if declared.is_property:
            continue
        assert declared.is_async == is_coroutine, f"{name}: async in stub {declared.is_async}, runtime {is_coroutine}"
        if declared.overloaded:
            assert len(declared.params) >= 2, name
            _check_overloads(name, declared.params, params)
        else:
            assert declared.params == [params], name


def test_update_overloads_take_properties_or_locks() -> None:
    for _, stub_path in CLIENTS.values():
        stub = stub_surface(stub_path)
        for name in ("update_repository_properties", "update_tag_properties", "update_manifest_properties"):
            first, second = stub[name].params
            assert first[-2].name == "properties"
            assert {p.name for p in second} >= {"can_delete", "can_list", "can_read", "can_write"}


def test_the_checker_notices_drift(tmp_path: Path) -> None:
    """The comparison itself fails on a renamed parameter (so the tests above can fail)."""
    text = (SRC / "_sync" / "client.pyi").read_text().replace("from_repository: str", "source: str")
    broken = tmp_path / "client.pyi"
    broken.write_text(text)
    with dockyard.ContainerRegistryClient("http://127.0.0.1:9") as client:
        runtime = runtime_surface(client)
    assert stub_surface(broken)["mount_blob"].params != [runtime["mount_blob"][0]]


def test_wheel_ships_stubs_and_py_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hatchling.build import build_wheel

    monkeypatch.chdir(SRC.parent.parent)  # hatchling builds the project in the working directory
    built = build_wheel(str(tmp_path))
    with zipfile.ZipFile(tmp_path / built) as wheel:
        names = set(wheel.namelist())
    assert {"dockyard/py.typed", "dockyard/_sync/client.pyi", "dockyard/aio/client.pyi"} <= names
