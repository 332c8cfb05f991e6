"""Every download row starts from the same memory.

On a VM whose balloon driver hands free memory back to its host, a file written into such memory costs ~5x the
CPU of one written into memory freed a moment before, and which memory a row's writes found depended on the row
before it (README, "This round's run", B7). So before each download the harness writes a file of the blob's size
(:func:`fill`, not timed) and the client deletes it just before its clock starts (:func:`release`): every client,
dockyard's and the peers', writes its output into memory freed a moment before.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The piece size of the file (the SDK stream's pieces).
PIECE = 1024 * 1024


def fill(path: Path, size: int) -> None:
    """Write ``size`` bytes to ``path`` for the next client to :func:`release`."""
    piece = bytes(PIECE)
    with path.open("wb", buffering=0) as fh:
        for _ in range(size // PIECE):
            fh.write(piece)
        fh.write(piece[: size % PIECE])


def release(path: str | None) -> None:
    """Delete the harness's file (in the client's process, outside the measured time): its page-cache memory
    becomes free just before this client's writes need that much."""
    if path is not None:
        os.unlink(path)
