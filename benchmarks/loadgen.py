"""A small HTTP/1.1 keep-alive load generator, for what Debian's wrk 4.1 cannot do: HEAD requests (it waits for a
body that never comes).

``python -m benchmarks.loadgen URL --method HEAD --connections 32 --seconds 10 --processes 2 [-H 'K: V']``
prints one JSON line: ``{"requests": N, "errors": E, "seconds": S, "rate": N/S}``. Each process runs asyncio with
its share of the connections over raw sockets; only responses with a 2xx status count as requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from urllib.parse import urlsplit


async def _connection(host: str, port: int, request: bytes, head: bool, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            length = 0
            for line in header.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length and not head:
                await reader.readexactly(length)
            counts[0 if 200 <= status < 300 else 1] += 1
    finally:
        writer.close()


async def _process(url: str, method: str, headers: list[str], connections: int, seconds: float) -> list[int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    counts = [0, 0]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_connection(host, port, request, method == "HEAD", deadline, counts)
                           for _ in range(connections)))
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("-H", "--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        counts = asyncio.run(_process(args.url, args.method, args.header, args.connections, args.seconds))
        print(json.dumps({"requests": counts[0], "errors": counts[1]}))
        return
    per_process = max(1, args.connections // args.processes)
    base = [sys.executable, "-m", "benchmarks.loadgen", args.url, "--method", args.method, "--child",
            "--connections", str(per_process), "--seconds", str(args.seconds)]
    for header in args.header:
        base += ["-H", header]
    start = time.monotonic()
    children = [subprocess.Popen(base, stdout=subprocess.PIPE, text=True) for _ in range(args.processes)]
    totals = {"requests": 0, "errors": 0}
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"load generator process exited {child.returncode}")
        for key, value in json.loads(out).items():
            totals[key] += value
    elapsed = time.monotonic() - start
    # Children start a little after `start`; their own deadline is what bounds the work.
    seconds = min(elapsed, args.seconds)
    print(json.dumps({**totals, "seconds": seconds, "rate": totals["requests"] / seconds}))


if __name__ == "__main__":
    main()
