"""The tools being compared: their names in the table and their versions on this machine."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

DOCKYARD_SDK = "dockyard SDK"
DOCKYARD_CLI = "dockyard copy"
AZURE = "azure-containerregistry"
ORAS = "oras-py"
SKOPEO = "skopeo copy"
WRK = "wrk"


def _pkg(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _program(argv: list[str], pattern: str = r"(\d+\.\d+[\w.+~-]*)") -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    match = re.search(pattern, proc.stdout + proc.stderr)
    return match.group(1) if match else "unknown"


def versions() -> dict[str, str]:
    """Versions of Python, dockyard and every peer, as the README records them."""
    return {
        "python": platform.python_version(),
        "dockyard": _pkg("dockyard"),
        "httpx": _pkg("httpx"),
        "uvicorn": _pkg("uvicorn"),
        "azure-containerregistry": _pkg("azure-containerregistry"),
        "azure-core": _pkg("azure-core"),
        "oras": _pkg("oras"),
        "skopeo": _program(["skopeo", "--version"]),
        "docker-registry": _program(["docker-registry", "--version"], r"\s(v?\d+\.\d+[\w.+~-]*)"),
        "wrk": _program(["wrk", "-v"]),
    }


def machine() -> dict[str, str]:
    """nproc, memory and CPU model of this machine."""
    cpu, memory = "unknown", "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        memory = f"{mem_kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {"nproc": str(os.cpu_count()), "memory": memory, "cpu": cpu, "kernel": platform.release()}
