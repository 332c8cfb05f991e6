"""Independent peers the tests run against: a missing one fails under CI=true and skips elsewhere."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str, hint: str) -> None:
    """Fail (CI) or skip (elsewhere) because ``what`` is not installed."""
    message = f"{what} is not installed ({hint})"
    if IN_CI:
        pytest.fail(f"{message}: under CI=true every peer must be present", pytrace=False)
    pytest.skip(message)


def require_program(name: str, debian_package: str) -> str:
    """The path of program ``name``; fails or skips when absent."""
    path = shutil.which(name)
    if path is None:
        missing(name, f"apt-get install {debian_package}")
    return path  # type: ignore[return-value]


def require_module(module: str, pip_package: str) -> None:
    """Fails or skips when Python module ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        missing(module, f"pip install {pip_package}")
