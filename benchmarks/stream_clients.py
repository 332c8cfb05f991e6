"""B7 client operations, each run by :mod:`benchmarks.worker` in a process of its own. Each times only its
transfer and reports the CPU seconds (user + system, all threads) the process spent on it (``cpu``); the stream
loops also report the CPU seconds of their own ``write`` calls into the output file (``write_cpu``, part of
``cpu``): on a VM that hands free memory back to its host, that part swings fivefold between rounds.

Every download starts from the same memory: the harness writes a file of the blob's size (``recycle``) and the
client deletes it just before its clock starts, so the page cache it writes finds memory freed a moment before,
whatever ran before it (see :mod:`benchmarks.recycle`).
"""

from __future__ import annotations

import contextlib
import hashlib
import resource
import time
from typing import Any

from tests.support.credentials import CountingCredential

from benchmarks.clientside import Stopwatch
from benchmarks.recycle import release

#: Read size of the SHA-256 ceiling and of the stream uploads' source file.
PIECE = 16 * 1024 * 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _credential(auth: bool) -> CountingCredential | None:
    return CountingCredential() if auth else None


class TimedWriter:
    """The stream loops' output file: counts the CPU seconds the calling thread spends in ``write``."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by ``__exit__``
        self.cpu = 0.0

    def write(self, chunk: bytes) -> None:
        start = time.thread_time()
        self.file.write(chunk)
        self.cpu += time.thread_time() - start

    def __enter__(self) -> TimedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        start = time.thread_time()
        self.file.close()
        self.cpu += time.thread_time() - start


def sha256_ceiling(path: str) -> dict[str, Any]:
    """One core hashing the blob's bytes (read from the page cache into a buffer first, not timed): the time and
    CPU seconds of the ``update`` calls alone."""
    hasher = hashlib.sha256()
    buffer = bytearray(PIECE)
    view = memoryview(buffer)
    seconds = cpu = 0.0
    with open(path, "rb", buffering=0) as fh:
        while got := fh.readinto(buffer):
            start_cpu = _cpu()
            with Stopwatch() as sw:
                hasher.update(view[:got])
            seconds += sw.seconds
            cpu += _cpu() - start_cpu
    return {"seconds": seconds, "cpu": cpu, "digest": f"sha256:{hasher.hexdigest()}"}


def stream_dockyard(url: str, repo: str, digest: str, out: str, auth: bool = False,
                    recycle: str | None = None) -> dict[str, Any]:
    """The seed document's download: iterate ``download_blob`` (verified at its end) into a file."""
    from dockyard import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    release(recycle)
    cpu = _cpu()
    with Stopwatch() as sw, TimedWriter(out) as fh:
        for chunk in client.download_blob(repo, digest):
            fh.write(chunk)
    cpu = _cpu() - cpu
    client.close()
    return {"seconds": sw.seconds, "cpu": cpu, "write_cpu": fh.cpu}


def stream_dockyard_aio(url: str, repo: str, digest: str, out: str, auth: bool = False,
                        recycle: str | None = None) -> dict[str, Any]:
    """The same with ``dockyard.aio`` (``async for``)."""
    import asyncio

    from tests.support.credentials import AsyncCountingCredential

    from dockyard.aio import ContainerRegistryClient

    async def run() -> dict[str, Any]:
        client = ContainerRegistryClient(url, AsyncCountingCredential() if auth else None)
        release(recycle)
        cpu = _cpu()
        with Stopwatch() as sw, TimedWriter(out) as fh:
            async for chunk in await client.download_blob(repo, digest):
                fh.write(chunk)
        cpu = _cpu() - cpu
        await client.close()
        return {"seconds": sw.seconds, "cpu": cpu, "write_cpu": fh.cpu}

    return asyncio.run(run())


def file_dockyard(url: str, repo: str, digest: str, out: str, auth: bool = False,
                  recycle: str | None = None) -> dict[str, Any]:
    """``download_blob_to_file`` (verified before the file appears)."""
    from dockyard import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    release(recycle)
    cpu = _cpu()
    with Stopwatch() as sw:
        client.download_blob_to_file(repo, digest, out)
    cpu = _cpu() - cpu
    client.close()
    return {"seconds": sw.seconds, "cpu": cpu}


def stream_azure(url: str, repo: str, digest: str, out: str, auth: bool = False,
                 recycle: str | None = None) -> dict[str, Any]:
    """azure-containerregistry's ``download_blob`` iterated into a file (it verifies at the end)."""
    from azure.containerregistry import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    release(recycle)
    cpu = _cpu()
    with Stopwatch() as sw, TimedWriter(out) as fh:
        for chunk in client.download_blob(repo, digest, enforce_https=False):
            fh.write(chunk)
    cpu = _cpu() - cpu
    client.close()
    return {"seconds": sw.seconds, "cpu": cpu, "write_cpu": fh.cpu}


def _upload_dockyard(url: str, repo: str, path: str, auth: bool, as_file: bool) -> dict[str, Any]:
    from dockyard import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    cpu = _cpu()
    with Stopwatch() as sw, contextlib.ExitStack() as stack:
        data = stack.enter_context(open(path, "rb")) if as_file else path
        digest, _ = client.upload_blob(repo, data)
    cpu = _cpu() - cpu
    client.close()
    return {"seconds": sw.seconds, "cpu": cpu, "digest": digest}


def upload_path_dockyard(url: str, repo: str, path: str, auth: bool = False) -> dict[str, Any]:
    """``upload_blob(repo, path)``."""
    return _upload_dockyard(url, repo, path, auth, as_file=False)


def upload_stream_dockyard(url: str, repo: str, path: str, auth: bool = False) -> dict[str, Any]:
    """``upload_blob(repo, stream)`` with an open file object (as azure-containerregistry is given one)."""
    return _upload_dockyard(url, repo, path, auth, as_file=True)


def upload_azure(url: str, repo: str, path: str, auth: bool = False) -> dict[str, Any]:
    """azure-containerregistry's ``upload_blob(repo, file)``."""
    from azure.containerregistry import ContainerRegistryClient

    client = ContainerRegistryClient(url, _credential(auth))
    cpu = _cpu()
    with Stopwatch() as sw, open(path, "rb") as data:
        digest, _ = client.upload_blob(repo, data, enforce_https=False)
    cpu = _cpu() - cpu
    client.close()
    return {"seconds": sw.seconds, "cpu": cpu, "digest": digest}

