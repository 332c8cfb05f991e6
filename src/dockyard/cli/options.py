"""The options every command accepts (``--registry``, ``--output``, ``--username``, ``--password-stdin``,
``--quiet``) and the decorator that adds them to a command."""

from __future__ import annotations

import enum
import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from .errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variables consulted, in order, when ``--registry`` is not given.
REGISTRY_ENV = ["DOCKYARD_REGISTRY", "AZURE_CONTAINERREGISTRY_ENDPOINT"]


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


_current = GlobalOptions()
#: What was given before the command name (``dockyard -r HOST -o json repo list``).
_root = GlobalOptions()


def current() -> GlobalOptions:
    """The common options of the running command."""
    return _current


def _common_parameters(output_flags: tuple[str, ...]) -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
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
                    envvar=REGISTRY_ENV,
                    help="Registry: host[:port] (http for loopback hosts, else https) or a full http(s):// URL. "
                    "Default: $DOCKYARD_REGISTRY, then $AZURE_CONTAINERREGISTRY_ENDPOINT.",
                    show_envvar=False,
                ),
            ],
        ),
        inspect.Parameter(
            "output_format",
            kw,
            default=OutputFormat.table,
            annotation=Annotated[OutputFormat, typer.Option(*output_flags, help="Output format.")],
        ),
        inspect.Parameter(
            "username",
            kw,
            default=None,
            annotation=Annotated[
                str | None, typer.Option("--username", "-u", help="User name (with --password-stdin).")
            ],
        ),
        inspect.Parameter(
            "password_stdin",
            kw,
            default=False,
            annotation=Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")],
        ),
        inspect.Parameter(
            "quiet",
            kw,
            default=False,
            annotation=Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or status messages.")],
        ),
    ]


_COMMON = ("registry", "output_format", "username", "password_stdin", "quiet")


def with_common_options(
    func: F | None = None, *, output_flags: tuple[str, ...] = ("--output", "-o"), password_prompt: bool = False
) -> Any:
    """Add the common options to a typer command function; the function reads them with :func:`current`.
    ``password_prompt``: ``--username`` alone asks for the password on a terminal (``dockyard login``)."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            global _current
            values = {name: kwargs.pop(name) for name in _COMMON}
            output = values["output_format"]
            _current = GlobalOptions(
                registry=values["registry"] or _root.registry,
                output=_root.output if output is OutputFormat.table else output,
                username=values["username"] or _root.username,
                password_stdin=values["password_stdin"] or _root.password_stdin,
                quiet=values["quiet"] or _root.quiet,
                password_prompt=password_prompt,
            )
            _current.check()
            return fn(*args, **kwargs)

        parameters = [*signature.parameters.values(), *_common_parameters(output_flags)]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # type: ignore[attr-defined]
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


def root_callback() -> Callable[..., None]:
    """The app callback that accepts the common options before the command name too."""

    def callback(**values: Any) -> None:
        global _root
        _root = GlobalOptions(
            registry=values["registry"],
            output=values["output_format"],
            username=values["username"],
            password_stdin=values["password_stdin"],
            quiet=values["quiet"],
        )

    parameters = _common_parameters(("--output", "-o"))
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__annotations__ = {p.name: p.annotation for p in parameters}
    callback.__doc__ = "Manage images and artifacts in container registries, or run one locally (dockyard serve)."
    return callback
