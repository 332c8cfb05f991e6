"""``python -m benchmarks.worker module:function '{"kwarg": ...}'``: one client operation in its own process.

The function returns a dict with ``seconds`` (the operation's own time) and anything else worth reporting.
Client modules import only the standard library and the client under test at module level.
"""

from __future__ import annotations

import importlib
import json
import sys

from benchmarks.clientside import report


def main(argv: list[str]) -> None:
    target, raw = argv
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    report(function(**json.loads(raw)))


if __name__ == "__main__":
    main(sys.argv[1:])
