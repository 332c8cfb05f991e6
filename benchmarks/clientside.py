"""What runs inside a measured client process: a stopwatch and the result line. Standard library only, so
that the harness adds nothing to a client's memory or start-up."""

from __future__ import annotations

import json
import time
from typing import Any

#: The marker a worker prints before its JSON result line.
RESULT_MARKER = "BENCH-RESULT "


def report(result: dict[str, Any]) -> None:
    """Print a worker result for :func:`benchmarks.measure.run_process` to pick up."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
