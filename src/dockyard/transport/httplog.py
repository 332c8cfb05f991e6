"""``logging_enable``: the headers of each request and response on the logger azure-core logs HTTP traffic to,
at ``DEBUG`` level, with secrets redacted — so logging set up for the original SDK (``logging.getLogger("azure")``)
shows dockyard's traffic too."""

from __future__ import annotations

import logging
from collections.abc import Iterable

#: The logger azure-core's HTTP logging policy writes to.
LOGGER = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")

#: Headers whose values are never logged.
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-ms-authorization"})
REDACTED = "REDACTED"


def _headers(items: Iterable[tuple[str, str]]) -> list[str]:
    return [f"    {name!r}: {REDACTED if name.lower() in REDACTED_HEADERS else value!r}" for name, value in items]


def log_request(method: str, url: str, headers: Iterable[tuple[str, str]]) -> None:
    """Log a request line and its headers."""
    if LOGGER.isEnabledFor(logging.DEBUG):
        lines = [f"Request URL: {url!r}", f"Request method: {method!r}", "Request headers:", *_headers(headers)]
        LOGGER.debug("\n".join(lines))


def log_response(status: int, headers: Iterable[tuple[str, str]]) -> None:
    """Log a response status and its headers."""
    if LOGGER.isEnabledFor(logging.DEBUG):
        LOGGER.debug("\n".join([f"Response status: {status}", "Response headers:", *_headers(headers)]))
