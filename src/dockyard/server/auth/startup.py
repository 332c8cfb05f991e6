"""What ``dockyard serve`` checks and says about authentication before it starts serving."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .htpasswd import read_htpasswd
from .keys import key_exposed, key_path, load_signing_key

#: Printed at start-up (and shown in ``--help``) when ``--accept-any-aad-token`` is on.
AAD_WARNING = (
    "WARNING: --accept-any-aad-token: /oauth2/exchange accepts ANY string as an Entra ID token and grants full "
    "rights (push, pull, delete) to whoever sends one, whatever --htpasswd says. Use it only to emulate ACR on a "
    "machine nobody else can reach. Tokens minted this way stop working once the server runs without the flag."
)


@dataclass
class AuthReport:
    """The lines to print at start-up: ``info`` on standard output, ``warnings`` on standard error."""

    info: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_auth(
    data_dir: Path, htpasswd: Path | None, anonymous_pull: bool, accept_any_aad_token: bool,
    key_file: Path | None = None,
) -> AuthReport:
    """Load (or create) the token signing key and the htpasswd users as the server will.

    Raises :class:`~.keys.KeyFileError` or :class:`~.htpasswd.HtpasswdError` with a one-line message naming
    the file (and line) when either cannot be used. An htpasswd file without users is accepted (repository-scoped
    tokens, created with ``dockyard token create`` while the server runs, can still log in), with a note."""
    load_signing_key(data_dir, key_file)
    report = AuthReport()
    if htpasswd is not None:
        users = read_htpasswd(htpasswd)
        extra = "; anonymous pull allowed" if anonymous_pull else ""
        signer = f"tokens signed with {key_file}" if key_file is not None else f"tokens from {data_dir}"
        report.info.append(f"auth: on, {len(users)} user(s) from {htpasswd}, {signer}{extra}")
        if not users:
            report.warnings.append(f"note: htpasswd file {htpasswd} has no users: only repository-scoped tokens can "
                                   f"log in (add an administrator with `dockyard user add NAME --htpasswd {htpasswd}`)")
    else:
        report.info.append("auth: off (anyone who can reach this server may push, pull and delete; "
                           "--htpasswd FILE turns it on)")
    if accept_any_aad_token:
        report.warnings.append(AAD_WARNING)
    if key_exposed(data_dir, key_file):
        report.warnings.append(f"WARNING: the token signing key {key_path(data_dir, key_file)} is readable or "
                               "writable by other users, who can forge tokens: chmod 600 it (or replace it to rotate "
                               "it)")
    return report
