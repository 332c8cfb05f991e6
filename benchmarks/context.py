"""What every benchmark gets: sizes for this run, a scratch area under /tmp, test data, fresh servers."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tests.support.servers import DistributionServer, DockyardServer, _Process

from benchmarks.measure import ROOT, reset_peak, tree_cpu_seconds, tree_memory_kib
from benchmarks.results import MIB, Results, Row
from dockyard.oci.digest import Hasher

PIECE = 16 * MIB
ACCESS_LOG = "access.jsonl"


@dataclass
class Settings:
    """Sizes and counts of one run; :meth:`full` is what the issue asks for, :meth:`quick` a smoke test."""

    mode: str
    rounds: int
    blob_size: int
    image_layers: int
    image_size: int
    tag_count: int
    load_seconds: int
    load_connections: int
    timeout: float
    server_workers: int = 2

    @classmethod
    def full(cls, rounds: int = 3) -> Settings:
        return cls("full", rounds, 1024 * MIB, 10, 500 * MIB, 10_000, 10, 32, timeout=300)

    @classmethod
    def quick(cls, rounds: int = 1) -> Settings:
        return cls("quick", rounds, 8 * MIB, 3, 6 * MIB, 120, 2, 8, timeout=180)


@dataclass
class Context:
    """A run's shared state. Every server it starts is stopped and its data removed by :meth:`server`."""

    settings: Settings
    workdir: Path
    results: Results
    _blobs: dict[int, tuple[Path, str]] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def logdir(self) -> Path:
        return self.workdir / "logs"

    def fresh_dir(self, prefix: str) -> Path:
        """A new, empty directory under the run's scratch area."""
        path = self.workdir / f"{prefix}-{next(self._names)}"
        path.mkdir(parents=True)
        return path

    def blob(self, size: int) -> tuple[Path, str]:
        """A file of ``size`` random bytes and its sha256 digest, made once per run and reused across rounds."""
        if size not in self._blobs:
            path = self.workdir / f"blob-{size}.bin"
            hasher = Hasher()
            with path.open("wb") as out:
                left = size
                while left:
                    piece = os.urandom(min(PIECE, left))
                    hasher.update(piece)
                    out.write(piece)
                    left -= len(piece)
            self._blobs[size] = (path, hasher.digest)
        return self._blobs[size]

    @cached_property
    def _serve_help(self) -> str:
        proc = subprocess.run([sys.executable, "-m", "dockyard", "serve", "--help"], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
        return proc.stdout

    def serve_supports(self, flag: str) -> bool:
        """Whether this ``dockyard serve`` has command-line option ``flag``."""
        return flag in self._serve_help

    @cached_property
    def dockyard_flags(self) -> list[str]:
        """``--workers N`` when this ``dockyard serve`` offers it (multi-process serving), else nothing."""
        if self.settings.server_workers <= 1 or not self.serve_supports("--workers"):
            return []
        return ["--workers", str(self.settings.server_workers)]

    @contextmanager
    def server(self, kind: str, *flags: str, access_log: bool = False) -> Iterator[DockyardServer | DistributionServer]:
        """A started server of ``kind`` ("dockyard" or "distribution") with its own data dir, removed afterwards.

        ``access_log`` makes ``dockyard serve`` log every request (when it can) for :meth:`request_count`.
        """
        workdir = self.fresh_dir(kind)
        if access_log and kind == "dockyard" and self.serve_supports("--access-log"):
            flags = (*flags, "--access-log", str(workdir / ACCESS_LOG))
        if kind == "dockyard":
            server: DockyardServer | DistributionServer = DockyardServer(workdir, *self.dockyard_flags, *flags)
        else:
            server = DistributionServer(workdir)
        server.start(timeout=60)
        try:
            yield server
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def request_count(server: DockyardServer | DistributionServer) -> int | None:
        """Requests the server logged so far (None without an access log): take the difference around a run."""
        path = server.workdir / ACCESS_LOG
        if not path.exists():
            return None
        with path.open("rb") as fh:
            return sum(1 for _ in fh)

    @staticmethod
    def reset_server_peak(server: DockyardServer | DistributionServer) -> None:
        """Start a new peak-RSS window for ``server`` (before each measured client)."""
        if server.proc is not None and server.proc.poll() is None:
            reset_peak(server.proc.pid)

    @staticmethod
    def server_cpu(server: _Process | None) -> float:
        """CPU seconds the server's process tree used so far (take the difference around a measurement); 0 for
        none."""
        if server is None or server.proc is None or server.proc.poll() is not None:
            return 0.0
        return tree_cpu_seconds(server.proc.pid)

    @staticmethod
    def server_peak_kib(server: DockyardServer | DistributionServer) -> int | None:
        """The server's peak RSS so far (sum over its process tree)."""
        if server.proc is None or server.proc.poll() is not None:
            return None
        return tree_memory_kib(server.proc.pid)[1]

    def rotations(self, rows: list[Row]) -> Iterator[Row]:
        """Each row once per round, the order rotated every round; rows that failed drop out."""
        for round_ in range(self.settings.rounds):
            for i in range(len(rows)):
                row = rows[(i + round_) % len(rows)]
                if row.status == "ok":
                    yield row

    def row(self, bench: str, case: str, tool: str, server: str, **kwargs: object) -> Row:
        """Create and register a result row."""
        row = Row(bench, case, tool, server, **kwargs)  # type: ignore[arg-type]
        self.results.rows.append(row)
        return row


def server_label(kind: str) -> str:
    """How a server kind shows in the table."""
    return {"dockyard": "dockyard serve", "distribution": "docker-registry"}[kind]
