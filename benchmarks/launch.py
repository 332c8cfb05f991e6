"""``python -m benchmarks.launch RESULT_FILE PROGRAM [ARGS...]``: run a program, record its wall time and peak RSS.

Why a separate small process: on Linux a child's ``ru_maxrss`` starts from the high-water mark of the memory it
was forked from (the kernel carries it over at ``exec``), so measuring straight from the harness would charge a
client with the harness's own memory (blob buffers, images). Forked from this small launcher instead, the floor is
the launcher's few MiB. Writes ``{"returncode", "peak_rss_kib", "wall_seconds", "cpu_seconds"}`` as JSON to RESULT_FILE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    result_file, *command = argv
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    with open(result_file, "w") as out:
        json.dump({"returncode": code, "peak_rss_kib": usage.ru_maxrss, "wall_seconds": wall,
                   "cpu_seconds": usage.ru_utime + usage.ru_stime}, out)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
