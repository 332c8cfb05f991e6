"""Transfer progress: the rich reporter on a copy between two OCI layouts, and the bytes reported on copies
into and out of a real ``dockyard serve``."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from dockyard import ContainerRegistryClient
from dockyard.cli.progress import RichProgress
from dockyard.layout import OCILayout
from dockyard.workflows.copy import copy_image
from dockyard.workflows.progress import NoProgress
from dockyard.workflows.stores import LayoutStore, RegistryStore
from tests.support.images import make_multiarch_index, write_to_layout
from tests.support.servers import DockyardServer


def test_progress_counts_every_byte(tmp_path: Path) -> None:
    index = make_multiarch_index(seed="progress", layer_size=50_000)
    source = OCILayout(tmp_path / "src").create()
    write_to_layout(index, source, "v1")
    output = io.StringIO()
    with Progress(console=Console(file=output, force_terminal=True, width=120)) as progress:
        reporter = RichProgress(progress)
        copy_image(LayoutStore(source), "v1", LayoutStore(OCILayout(tmp_path / "dst").create()), "v1",
                   progress=reporter, concurrency=3)
        total = progress.tasks[0]
        assert total.total == total.completed == sum(b.size for b in index.all_blobs())
        assert len(progress.tasks) == 1  # per-blob bars are removed when done
        copy_image(LayoutStore(source), "v1", LayoutStore(OCILayout(tmp_path / "dst")), "v1", progress=reporter)
        assert progress.tasks[0].completed == 2 * sum(b.size for b in index.all_blobs())  # skipped blobs count too
    assert "total" in output.getvalue()


class _Recorder(NoProgress):
    """Bytes reported per blob (hooks come from worker threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes: dict[str, int] = {}
        self.finished: set[str] = set()

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        with self.lock:
            self.bytes[digest] = self.bytes.get(digest, 0) + nbytes

    def blob_finished(self, digest: str) -> None:
        with self.lock:
            self.finished.add(digest)


class _UploadSpy(ContainerRegistryClient):
    """A real client that notes which uploads were given an SDK progress hook."""

    hooked: list[str]

    def upload_blob(self, repository: str, data: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("progress") is not None:
            self.hooked.append(kwargs["digest"])
        return super().upload_blob(repository, data, **kwargs)


def test_registry_transfers_report_through_the_sdk_hooks(
    tmp_path: Path, dockyard_server: DockyardServer, repo_name: str
) -> None:
    """Into a registry the bytes are those the SDK reports as sent; out of it, those the layout stored."""
    index = make_multiarch_index(seed=repo_name, layer_size=300_000)
    blobs = {b.digest: b.size for b in index.all_blobs()}
    source = OCILayout(tmp_path / "src").create()
    write_to_layout(index, source, "v1")
    with _UploadSpy(dockyard_server.url) as client:
        client.hooked = []
        up = _Recorder()
        copy_image(LayoutStore(source), "v1", RegistryStore(client, repo_name, dockyard_server.url), "v1",
                   progress=up, concurrency=3)
        assert up.bytes == blobs and up.finished == set(blobs)
        assert sorted(client.hooked) == sorted(blobs)
        down = _Recorder()
        copy_image(RegistryStore(client, repo_name, dockyard_server.url), "v1",
                   LayoutStore(OCILayout(tmp_path / "dst").create()), "v1", progress=down, concurrency=3)
        assert down.bytes == blobs and down.finished == set(blobs)
    for digest in blobs:
        assert OCILayout.open(tmp_path / "dst").read_blob(digest) == source.read_blob(digest)
