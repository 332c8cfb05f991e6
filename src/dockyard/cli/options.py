"""The options every command accepts (``--registry``, ``--output``, ``--username``, ``--password-stdin``,
``--quiet``, the TLS and plain-HTTP switches), before or after the command name, and the decorator that adds
them to a command. A value given on the command line always wins over the environment (:func:`resolve`)."""

from __future__ import annotations

import enum
import functools
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

try:  # recent typer versions vendor their own click; older ones use click itself
    from typer._click.core import Context
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover
    from click import Context, get_current_context  # type: ignore[assignment,no-redef]

from .errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variables consulted, in order, when ``--registry`` is not given.
REGISTRY_ENV = ["DOCKYARD_REGISTRY", "AZURE_CONTAINERREGISTRY_ENDPOINT"]


#: The help panel of the common options.
PANEL = "Global options"


class OutputFormat(str, enum.Enum):
    """How results are printed."""

    table = "table"
    json = "json"


@dataclass
class GlobalOptions:
    """The common options of the command being run."""

    registry: str | None = None
    output: OutputFormat = OutputFormat.table
    username: str | None = None
    password_stdin: bool = False
    quiet: bool = False
    #: ``--ca-file``: CA certificates (PEM) to verify the registry's TLS certificate with.
    ca_file: Path | None = None
    #: ``--insecure``: do not verify TLS certificates.
    insecure: bool = False
    #: ``--plain-http``: ``http://`` for a registry given without scheme.
    plain_http: bool = False
    #: ``--allow-insecure-credentials``: credentials may go over plain HTTP to other hosts.
    allow_insecure_credentials: bool = False
    #: The command asks for the password on a terminal when ``--username`` comes without ``--password-stdin``.
    password_prompt: bool = False
    _password: str | None = None

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.json

    def password(self) -> str | None:
        """The password (asked once): read from standard input with ``--password-stdin``, else prompted for
        without echo when the command allows it; ``None`` without ``--username``."""
        if self._password is None:
            if self.password_stdin:
                self._password = sys.stdin.read().rstrip("\r\n")
                if not self._password:
                    raise UsageError("--password-stdin: standard input is empty")
            elif self.username and self.password_prompt:
                self._password = typer.prompt("Password", hide_input=True, err=True)
        return self._password

    def check(self) -> None:
        """Reject inconsistent credential flags before the command runs."""
        if self.password_stdin and not self.username:
            raise UsageError("--password-stdin needs --username")
        if self.username and not self.password_stdin:
            if not self.password_prompt:
                raise UsageError("--username needs --password-stdin (the password is read from standard input)")
            if not sys.stdin.isatty():
                raise UsageError("--username without --password-stdin needs a terminal to ask for the password; "
                                 "pipe it in with --password-stdin")


def current() -> GlobalOptions:
    """The common options of the running command (resolved by :func:`with_common_options`)."""
    context = get_current_context(silent=True)
    options = context.obj if context is not None else None
    return options if isinstance(options, GlobalOptions) else GlobalOptions()


def _common_parameters(output_flags: tuple[str, ...]) -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY

    def flag(name: str, flags: tuple[str, ...], help: str) -> inspect.Parameter:
        option = typer.Option(*flags, help=help, rich_help_panel=PANEL)
        return inspect.Parameter(name, kw, default=False, annotation=Annotated[bool, option])

    return [
        inspect.Parameter(
            "registry",
            kw,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    "--registry",
                    "-r",
                    metavar="HOST",
                    help="Registry: host[:port] (http for loopback hosts, else https) or a full http(s):// URL. "
                    "Default: $DOCKYARD_REGISTRY, then $AZURE_CONTAINERREGISTRY_ENDPOINT.",
                    rich_help_panel=PANEL,
                ),
            ],
        ),
        inspect.Parameter(
            "output_format",
            kw,
            default=OutputFormat.table,
            annotation=Annotated[
                OutputFormat,
                typer.Option(*output_flags, metavar="table|json", help="Output format.", rich_help_panel=PANEL),
            ],
        ),
        inspect.Parameter(
            "username",
            kw,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option("--username", "-u", metavar="USER", help="User name (with --password-stdin).",
                             rich_help_panel=PANEL),
            ],
        ),
        flag("password_stdin", ("--password-stdin",), "Read the password from standard input."),
        flag("quiet", ("--quiet", "-q"), "No progress bars or status messages."),
        inspect.Parameter(
            "ca_file",
            kw,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option("--ca-file", metavar="FILE", help="Trust the CA certificates in FILE (PEM) for TLS.",
                             rich_help_panel=PANEL),
            ],
        ),
        flag("insecure", ("--insecure",), "Skip TLS certificate verification."),
        flag("plain_http", ("--plain-http",), "Use http:// for a registry given without scheme."),
        flag(
            "allow_insecure_credentials",
            ("--allow-insecure-credentials",),
            "Send credentials over plain HTTP to a host other than this machine.",
        ),
    ]


#: The common options, by parameter name.
_COMMON = tuple(p.name for p in _common_parameters(("--output",)))


def _given_on_command_line(context: Context, name: str) -> bool:
    source = context.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def resolve(context: Context, *, password_prompt: bool = False, env: Mapping[str, str] | None = None) -> GlobalOptions:
    """The common options of the command of ``context``: for each, the value given on the command line after the
    command, else before it (``dockyard -r HOST tag list``), else (``--registry`` only) the environment, else the
    default. The environment is consulted here only, so a command-line value always wins over it."""
    env = os.environ if env is None else env
    chain = []
    ctx: Context | None = context
    while ctx is not None:
        chain.append(ctx)
        ctx = ctx.parent
    values: dict[str, Any] = {}
    for name in _COMMON:
        for ctx in chain:
            if name in ctx.params and _given_on_command_line(ctx, name):
                values[name] = ctx.params[name]
                break
    registry = values.get("registry") or next((env[n] for n in REGISTRY_ENV if env.get(n)), None)
    return GlobalOptions(
        registry=registry,
        output=values.get("output_format", OutputFormat.table),
        username=values.get("username"),
        password_stdin=values.get("password_stdin", False),
        quiet=values.get("quiet", False),
        ca_file=values.get("ca_file"),
        insecure=values.get("insecure", False),
        plain_http=values.get("plain_http", False),
        allow_insecure_credentials=values.get("allow_insecure_credentials", False),
        password_prompt=password_prompt,
    )


def with_common_options(
    func: F | None = None, *, output_flags: tuple[str, ...] = ("--output", "-o"), password_prompt: bool = False
) -> Any:
    """Add the common options to a typer command function; the function reads them with :func:`current`.
    ``password_prompt``: ``--username`` alone asks for the password on a terminal (``dockyard login``)."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in _COMMON:
                kwargs.pop(name)
            context = get_current_context()
            options = resolve(context, password_prompt=password_prompt)
            options.check()
            context.obj = options
            return fn(*args, **kwargs)

        parameters = [*signature.parameters.values(), *_common_parameters(output_flags)]
        # typer reads the options from the signature; functions have no declared __signature__ [attr-defined], and
        # the wrapper takes more parameters than ``fn`` [return-value].
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__
        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def command(group: typer.Typer, name: str, *, example: str, **kwargs: Any) -> Callable[[F], F]:
    """Register a command on ``group`` with the common options and an example in its help."""

    def decorate(fn: F) -> F:
        output_flags = kwargs.pop("output_flags", ("--output", "-o"))
        password_prompt = kwargs.pop("password_prompt", False)
        lines = example.strip().splitlines()
        epilog = "Example:\n\n" + "\n\n".join(f"  {line}" for line in lines)
        wrapped = with_common_options(fn, output_flags=output_flags, password_prompt=password_prompt)
        group.command(name, epilog=epilog, **kwargs)(wrapped)
        return fn

    return decorate


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"dockyard {__version__}")
        raise typer.Exit()


def root_callback() -> Callable[..., None]:
    """The app callback that accepts the common options before the command name too (the command reads them
    from its parent context in :func:`resolve`)."""

    def callback(**values: Any) -> None:
        del values

    version = inspect.Parameter(
        "version",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Show the version and exit.")
        ],
    )
    parameters = [version, *_common_parameters(("--output", "-o"))]
    # typer reads the options from the signature (not a declared attribute of functions).
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__annotations__ = {p.name: p.annotation for p in parameters}
    callback.__doc__ = "Manage images and artifacts in container registries, or run one locally (dockyard serve)."
    return callback


#: ``--metadata-url`` of the commands that work on a registry's metadata directly (as ``dockyard serve`` takes it).
MetadataUrl = Annotated[str | None, typer.Option(
    "--metadata-url", envvar="DOCKYARD_METADATA_URL",
    help="The registry's metadata database: sqlite:///path/metadata.db or postgresql://user:pass@host:port/db "
    "(default: metadata.db in the data dir).", show_default=False)]
