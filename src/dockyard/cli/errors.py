"""How the CLI reports failures: one line on standard error and a non-zero exit status, never a traceback.

:func:`describe` is the one place that turns an exception into that line.
"""

from __future__ import annotations

import ssl

from .. import errors

#: Exit status for errors reported by the registry or the network.
EXIT_FAILURE = 1
#: Exit status for bad command-line input (as click uses for usage errors).
EXIT_USAGE = 2
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input found after parsing (a malformed reference, filter, duration ...)."""


class CommandError(Exception):
    """A command failed for a reason it explains itself (e.g. some deletions were refused)."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _registry_detail(exc: errors.HttpResponseError) -> str:
    message = exc.message
    if exc.errors:
        first = exc.errors[0]
        message = first.get("message") or message
    code = f" {exc.error_code}" if exc.error_code else ""
    status = f"{exc.status_code}{code}" if exc.status_code else code.strip()
    detail = f"{message} ({status})" if status else message
    subject = getattr(exc, "subject", None)
    return f"{subject}: {detail}" if subject else detail


#: TLS spoken to a plain-HTTP port fails with OpenSSL's "wrong version number".
_PLAIN_HTTP_HINT = " (the registry does not speak TLS: give it as http://HOST:PORT)"

#: Registry errors and the words their message starts with, most specific first.
_REGISTRY_ERRORS: tuple[tuple[type[errors.HttpResponseError], str], ...] = (
    (errors.ResourceNotFoundError, "not found"),
    (errors.OperationNotAllowedError, "not allowed"),
)


def _unreachable(exc: errors.ServiceRequestError) -> str:
    """``cannot reach URL: reason`` for a request that could not be completed."""
    inner = exc.inner_exception
    reason = str(inner) if inner is not None and str(inner) else exc.message
    hint = _PLAIN_HTTP_HINT if "WRONG_VERSION_NUMBER" in str(exc.message) else ""
    if isinstance(inner, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc.message):
        hint = " (trust its CA with --ca-file FILE, or skip verification with --insecure)"
    where = getattr(exc, "url", None) or "the registry"
    return f"cannot reach {where}: {reason}{hint}"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit status for ``exc``."""
    if isinstance(exc, UsageError):
        return _one_line(str(exc)), EXIT_USAGE
    if isinstance(exc, errors.ClientAuthenticationError):
        return (
            _one_line(
                f"authentication failed: {_registry_detail(exc)}; "
                "run 'dockyard login' or pass --username with --password-stdin"
            ),
            EXIT_FAILURE,
        )
    for kind, prefix in _REGISTRY_ERRORS:
        if isinstance(exc, kind):
            return _one_line(f"{prefix}: {_registry_detail(exc)}"), EXIT_FAILURE
    if isinstance(exc, errors.UnsupportedOperationError):
        return _one_line(f"not supported by this registry: {exc.message}"), EXIT_FAILURE
    if isinstance(exc, errors.HttpResponseError):
        return _one_line(f"registry error: {_registry_detail(exc)}"), EXIT_FAILURE
    if isinstance(exc, errors.InsecureCredentialsError):
        return (
            _one_line(f"refusing to send credentials over plain HTTP to {exc.url}; use https, or pass "
                      "--allow-insecure-credentials to send them anyway"),
            EXIT_USAGE,
        )
    if isinstance(exc, errors.ServiceRequestError):
        return _one_line(_unreachable(exc)), EXIT_FAILURE
    if isinstance(exc, errors.DigestValidationError):
        return _one_line(f"digest mismatch: {exc.message}"), EXIT_FAILURE
    if isinstance(exc, CommandError):
        return _one_line(str(exc)), EXIT_FAILURE
    if isinstance(exc, errors.DockyardError):
        return _one_line(str(exc)), EXIT_FAILURE
    if isinstance(exc, FileNotFoundError):
        return _one_line(f"no such file or directory: {exc.filename or exc}"), EXIT_FAILURE
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return _one_line(f"{where}{exc.strerror or exc}"), EXIT_FAILURE
    if isinstance(exc, ValueError):
        # The OCI model's parse errors (references, digests, names, manifests) are ValueErrors with clear text.
        return _one_line(str(exc)), EXIT_USAGE
    return _one_line(f"unexpected error: {type(exc).__name__}: {exc}"), EXIT_FAILURE
