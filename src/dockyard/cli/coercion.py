"""Converting command-line values without building a pydantic validator for every parameter.

typer 0.29 converts each parameter's value with a pydantic ``TypeAdapter``, built when the parameter is
processed, even when its value is missing: importing pydantic and building the adapters is most of what a
short command like ``dockyard tag list REPO`` spends in typer. :func:`deferred_runtime_param` (the
``get_runtime_param`` of the parameter classes of :mod:`dockyard.cli.helpstyle`) keeps typer's conversion
and results, and builds typer's converter only for a value that needs it:

- a missing value: typer's own answer (``None``, or ``()`` for a multi-value parameter), nothing to convert;
- a ``str`` parameter given a string: the string itself (what typer's ``str`` adapter returns for one);
- an enum or ``Literal`` parameter: typer's own choice matching (``coerce_cli_choice``, all its adapter
  calls); a value that is not a choice goes to typer's adapter, which words the error.

Every other value (numbers, paths, lists, bad choices) goes through typer's converter, built on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import choice_coercion_annotation, coerce_cli_choice


@dataclass(frozen=True)
class DeferredRuntimeParam(RuntimeParam):
    """typer's runtime conversion of one parameter, its pydantic adapter built on the first value needing it."""

    descriptor: TypeDescriptor
    _built: list[RuntimeParam] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def of(cls, descriptor: TypeDescriptor) -> DeferredRuntimeParam:
        return cls(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation,
                   descriptor=descriptor)

    def typer_param(self) -> RuntimeParam:
        """typer's own converter for this parameter (built once)."""
        if not self._built:
            self._built.append(build_runtime_param(self.descriptor))
        return self._built[0]

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        info = self.parameter_info
        if info.parser is None and self.descriptor.file_annotation is None:
            if self.annotation is str and type(value) is str:
                return value
            choice = choice_coercion_annotation(self.annotation, info)
            if choice is not None:
                choices, case_sensitive = choice
                try:
                    return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
                except ValueError:
                    pass  # not a choice: typer's converter reports it in its own words
        return self.typer_param()._coerce_value(value, param=param, ctx=ctx)


def deferred_runtime_param(param: Any) -> RuntimeParam:
    """``get_runtime_param`` of typer's parameter classes, giving a :class:`DeferredRuntimeParam`."""
    if param._runtime_param is None:
        param._runtime_param = DeferredRuntimeParam.of(param.type_descriptor)
    return param._runtime_param  # type: ignore[no-any-return]
