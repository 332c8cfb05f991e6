"""The rich progress reporter, driven by a real copy between two OCI layouts."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from dockyard.cli.progress import RichProgress
from dockyard.layout import OCILayout
from dockyard.workflows.copy import copy_image
from dockyard.workflows.stores import LayoutStore
from tests.support.images import make_multiarch_index, write_to_layout


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
