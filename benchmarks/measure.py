"""Running one client in its own process and measuring it: wall time, in-process time and peak RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.servers import subprocess_env

from benchmarks.clientside import RESULT_MARKER

#: The repository root: workers run from here so that ``benchmarks`` and ``tests`` import.
ROOT = Path(__file__).resolve().parent.parent


class RunFailed(RuntimeError):
    """A client process exited non-zero, timed out, or printed no result."""


@dataclass
class ClientRun:
    """One measured process: ``seconds`` is the operation's time, ``peak_rss_kib`` the process's high-water mark."""

    seconds: float
    peak_rss_kib: int
    wall_seconds: float
    cpu_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _tail(path: Path, limit: int = 2000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-limit:]


def run_process(argv: list[str], logdir: Path, *, timeout: float, env: dict[str, str] | None = None) -> ClientRun:
    """Run ``argv`` to completion through :mod:`benchmarks.launch`, which measures its wall time and peak RSS.

    The process runs in its own session; on timeout the whole group is killed. Children of the measured process
    that it waited for count towards its peak RSS (the largest of them, as ``wait4`` reports).
    """
    logdir.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.monotonic_ns()}"
    out_path, err_path = logdir / f"{stamp}.out", logdir / f"{stamp}.err"
    result_path = logdir / f"{stamp}.json"
    launcher = [sys.executable, "-m", "benchmarks.launch", str(result_path), *argv]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(launcher, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT,
                                env=env or subprocess_env(), start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RunFailed(f"timed out after {timeout:.0f}s: {' '.join(argv[:4])}") from None
    if proc.returncode != 0 or not result_path.exists():
        raise RunFailed(f"exit {proc.returncode}: {' '.join(argv[:4])}\n{_tail(err_path)}{_tail(out_path)}")
    measured = json.loads(result_path.read_text())
    extra: dict[str, Any] = {}
    for line in out_path.read_text(errors="replace").splitlines():
        if line.startswith(RESULT_MARKER):
            extra = json.loads(line[len(RESULT_MARKER):])
    for path in (out_path, err_path, result_path):
        path.unlink(missing_ok=True)
    wall = float(measured["wall_seconds"])
    seconds = float(extra.pop("seconds", wall))
    return ClientRun(seconds=seconds, peak_rss_kib=int(measured["peak_rss_kib"]), wall_seconds=wall,
                     cpu_seconds=float(measured["cpu_seconds"]), extra=extra)


def run_python_client(target: str, logdir: Path, *, timeout: float, **kwargs: Any) -> ClientRun:
    """Run ``module:function(**kwargs)`` in a fresh interpreter through :mod:`benchmarks.worker`.

    The function times its own operation (imports and client construction excluded) and returns a dict
    with ``seconds``; the peak RSS covers the whole process.
    """
    argv = [sys.executable, "-m", "benchmarks.worker", target, json.dumps(kwargs)]
    return run_process(argv, logdir, timeout=timeout)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (e.g. a server's worker processes)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB, summed over ``pid``'s process tree."""
    pids = process_tree(pid)
    return sum(_status_kib(p, "VmRSS") for p in pids), sum(_status_kib(p, "VmHWM") for p in pids)


def reset_peak(pid: int) -> None:
    """Reset the peak RSS (VmHWM) of ``pid``'s process tree, so the next reading covers only what follows."""
    for child in process_tree(pid):
        try:
            Path(f"/proc/{child}/clear_refs").write_text("5")
        except OSError:
            pass


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid``'s process tree (all threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for child in process_tree(pid):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def cpu_load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]
