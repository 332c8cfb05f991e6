"""A session is assembled in a staging directory and renamed into place whole: a collection that lists sessions at
the same moment (``dockyard gc --min-age 0`` next to a push) never sees a half-made one and never removes it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dockyard.server.storage.blobs import STAGING_GRACE, FileBlobStore, FileUploadStore


def test_a_session_being_assembled_is_not_a_session(tmp_path: Path) -> None:
    uploads = FileUploadStore(tmp_path, FileBlobStore(tmp_path))
    made = uploads.create("demo/app")
    staging = uploads.root / ".new-0123456789abcdef0123456789abcdef"
    staging.mkdir()
    (staging / "data").write_bytes(b"")
    listed = [state.id for state in uploads.sessions()]
    assert listed == [made.id]
    assert staging.exists()  # young: another process may be about to rename it into place


def test_a_staging_directory_left_by_a_crash_is_removed_when_old(tmp_path: Path) -> None:
    uploads = FileUploadStore(tmp_path, FileBlobStore(tmp_path))
    staging = uploads.root / ".new-0123456789abcdef0123456789abcdef"
    staging.mkdir()
    old = time.time() - STAGING_GRACE - 60
    os.utime(staging, (old, old))
    assert list(uploads.sessions()) == []
    assert not staging.exists()


def test_a_new_session_is_complete_when_it_appears(tmp_path: Path) -> None:
    uploads = FileUploadStore(tmp_path, FileBlobStore(tmp_path))
    made = uploads.create("demo/app")
    assert sorted(p.name for p in (uploads.root / made.id).iterdir()) == ["data", "state.json"]
    assert uploads.state(made.id) is not None
    assert [p.name for p in uploads.root.iterdir()] == [made.id]
