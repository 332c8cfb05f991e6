"""mypy sees precise types on both clients: a user's script over every method checks clean under ``--strict``,
``reveal_type`` shows the real result types, and misuse is reported."""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dockyard
import dockyard.aio
from tests.support.peers import require_module

USAGE = Path(__file__).parent / "typing" / "usage.py"
SRC = Path(dockyard.__file__).parent


def _mypy(path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    require_module("mypy", "mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(cache), str(path)],
        capture_output=True, text=True, timeout=600, cwd=cache,
    )


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    return _mypy(USAGE, tmp_path_factory.mktemp("mypy"))


def _revealed(output: str) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"usage\.py:(\d+): note: Revealed type is \"(.*)\"", output)}


def _line_of(text: str, after: int = 0) -> int:
    lines = USAGE.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if i > after and text in line)


def test_usage_script_has_no_errors(checked: subprocess.CompletedProcess[str]) -> None:
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert errors == [] and checked.returncode == 0, checked.stdout + checked.stderr


SYNC, ASYNC = "def sync_usage", "async def async_usage"


@pytest.mark.parametrize(
    ("section", "anchor", "expected"),
    [
        (SYNC, "reveal_type(client.list_repository_names())", "dockyard._sync.paging.ItemPaged[str]"),
        (SYNC, 'reveal_type(client.get_repository_properties("repo"))', "dockyard.models.RepositoryProperties"),
        (SYNC, "reveal_type(client.list_tag_properties(",
         "dockyard._sync.paging.ItemPaged[dockyard.models.ArtifactTagProperties]"),
        (SYNC, "reveal_type(client.update_tag_properties(", "dockyard.models.ArtifactTagProperties"),
        (SYNC, 'reveal_type(client.get_manifest("repo", "v1"))', "dockyard.models.GetManifestResult"),
        (SYNC, 'reveal_type(client.upload_blob("repo", b"data"))', "tuple[str, int]"),
        (SYNC, 'reveal_type(client.download_blob("repo", digest))', "dockyard._sync.download.DownloadBlobStream"),
        (ASYNC, "reveal_type(client.list_repository_names())", "dockyard.aio.paging.AsyncItemPaged[str]"),
        (ASYNC, "pending = reveal_type(", "typing.Coroutine[Any, Any, dockyard.models.RepositoryProperties]"),
        (ASYNC, 'reveal_type(client.list_tag_properties("repo"))',
         "dockyard.aio.paging.AsyncItemPaged[dockyard.models.ArtifactTagProperties]"),
        (ASYNC, "reveal_type(await client.upload_blob(", "tuple[str, int]"),
        (ASYNC, "reveal_type(await client.download_blob(", "dockyard.aio.download.AsyncDownloadBlobStream"),
    ],
)
def test_revealed_types(checked: subprocess.CompletedProcess[str], section: str, anchor: str, expected: str) -> None:
    line = _line_of(anchor, _line_of(section))
    assert _revealed(checked.stdout).get(line) == expected, checked.stdout


MISUSE = """
from dockyard import ContainerRegistryClient
from dockyard.aio import ContainerRegistryClient as AsyncClient

async def main(client: ContainerRegistryClient, aclient: AsyncClient) -> None:
    client.get_tag_properties("repo")
    client.update_tag_properties("repo", "v1", can_write="no")
    size: str = client.upload_blob("repo", b"x")[1]
    props = aclient.get_manifest_properties("repo", "v1")
    print(props.digest)
"""


def test_misuse_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "misuse.py"
    script.write_text(MISUSE)
    output = _mypy(script, tmp_path).stdout
    reported = sorted({int(m) for m in re.findall(r"misuse\.py:(\d+): error", output)})
    assert reported == [6, 7, 8, 10], output


def test_wheel_ships_py_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hatchling.build import build_wheel

    monkeypatch.chdir(SRC.parent.parent)  # hatchling builds the project in the working directory
    built = build_wheel(str(tmp_path))
    with zipfile.ZipFile(tmp_path / built) as wheel:
        names = set(wheel.namelist())
    assert {"dockyard/py.typed", "dockyard/_sync/client.py", "dockyard/aio/client.py"} <= names


@pytest.mark.parametrize("client", [dockyard.ContainerRegistryClient, dockyard.aio.ContainerRegistryClient])
def test_methods_are_real_code(client: type) -> None:
    """Each public method is a function written under its own name in its client module (so tracebacks,
    go-to-definition and ``help()`` land on it), and ``inspect`` shows its full signature."""
    module = Path(inspect.getsourcefile(client) or "")
    for name, method in vars(client).items():
        if name.startswith("_") or isinstance(method, property):
            continue
        assert method.__code__.co_name == name, name
        assert Path(method.__code__.co_filename) == module, name
    params = inspect.signature(client.update_tag_properties).parameters
    assert {"repository", "tag", "properties", "can_delete", "can_list", "can_read", "can_write"} <= set(params)


def test_sync_client_is_generated_from_async() -> None:
    """``scripts/unasync.py --check`` passes on the committed tree, and notices a sync twin edited by hand."""
    script = SRC.parent.parent / "scripts" / "unasync.py"
    checked = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    spec = importlib.util.spec_from_file_location("unasync", script)
    assert spec is not None and spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    assert unasync.unasync("async def f(x):\n    async for y in await x.aiter_raw():\n") == (
        "def f(x):\n    for y in x.iter_raw():\n"
    )
