"""Models and enums with the names, constructors and attributes of azure-containerregistry 1.2.

Read-only attributes raise ``AttributeError`` on assignment; the ``can_*`` lock flags are writable.
Every model has a readable ``repr`` and value equality. Fixes over the original: tags carry their
``repository_name``, ``fully_qualified_reference`` keeps the ``sha256:`` prefix, and unknown
architectures / operating systems are kept as plain strings.
"""

from __future__ import annotations

import io
import warnings
from datetime import datetime
from enum import Enum, EnumMeta
from typing import Any, Generic, NoReturn, TypeVar, overload

from .oci.locks import LOCK_ATTRIBUTES

__all__ = [
    "ArtifactArchitecture",
    "ArtifactManifestOrder",
    "ArtifactManifestProperties",
    "ArtifactOperatingSystem",
    "ArtifactTagOrder",
    "ArtifactTagProperties",
    "DownloadManifestResult",
    "GetManifestResult",
    "RepositoryProperties",
]


class _CaseInsensitiveEnumMeta(EnumMeta):
    """Member lookup by name ignores case: ``ArtifactTagOrder["last_updated_on_descending"]``."""

    def __getitem__(cls, name: str) -> Any:
        return super().__getitem__(name.upper())

    def __getattr__(cls, name: str) -> Any:
        try:
            return cls._member_map_[name.upper()]
        except KeyError:
            raise AttributeError(name) from None


class _StrEnum(str, Enum, metaclass=_CaseInsensitiveEnumMeta):
    """A str enum whose constructor also accepts member names and values in any case."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            folded = value.lower()
            for member in cls:
                if member.value.lower() == folded or member.name.lower() == folded:
                    return member
        return None

    def __str__(self) -> str:
        return str(self.value)


class ArtifactTagOrder(_StrEnum):
    """Order of ``list_tag_properties``."""

    NONE = "none"
    LAST_UPDATED_ON_DESCENDING = "timedesc"
    LAST_UPDATED_ON_ASCENDING = "timeasc"


class ArtifactManifestOrder(_StrEnum):
    """Order of ``list_manifest_properties``."""

    NONE = "none"
    LAST_UPDATED_ON_DESCENDING = "timedesc"
    LAST_UPDATED_ON_ASCENDING = "timeasc"


class ArtifactArchitecture(_StrEnum):
    """CPU architectures (GOARCH values)."""

    AMD64 = "amd64"
    ARM = "arm"
    ARM64 = "arm64"
    I386 = "386"
    MIPS = "mips"
    MIPS64 = "mips64"
    MIPS64LE = "mips64le"
    MIPSLE = "mipsle"
    PPC64 = "ppc64"
    PPC64LE = "ppc64le"
    RISCV64 = "riscv64"
    S390X = "s390x"
    WASM = "wasm"


class ArtifactOperatingSystem(_StrEnum):
    """Operating systems (GOOS values)."""

    AIX = "aix"
    ANDROID = "android"
    DARWIN = "darwin"
    DRAGONFLY = "dragonfly"
    FREEBSD = "freebsd"
    ILLUMOS = "illumos"
    IOS = "ios"
    JS = "js"
    LINUX = "linux"
    NETBSD = "netbsd"
    OPENBSD = "openbsd"
    PLAN9 = "plan9"
    SOLARIS = "solaris"
    WINDOWS = "windows"


def _enum_or_str(enum: type[_StrEnum], value: Any) -> Any:
    """The enum member for ``value`` when there is one, else the raw string (or ``None``)."""
    if value is None or isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        return value


T = TypeVar("T")
M = TypeVar("M", bound="_Model")


class _ReadOnly(Generic[T]):
    """A model attribute the constructor sets and nobody else: assigning to it raises ``AttributeError``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _ReadOnly[T]: ...

    @overload
    def __get__(self, obj: _Model, owner: type) -> T: ...

    def __get__(self, obj: _Model | None, owner: type) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name]  # the instance's own entry under the field's name (this descriptor wins)
        return list(value) if isinstance(value, list) else value  # callers get a copy, never the model's list

    def __set__(self, obj: object, value: object) -> NoReturn:
        raise AttributeError(f"{type(obj).__name__}.{self.name} is read-only")


class _Model:
    """Shared behaviour: read-only fields (``_ReadOnly``), writable lock flags, repr and equality."""

    _READ_ONLY: tuple[str, ...] = ()

    can_delete: bool | None
    can_write: bool | None
    can_list: bool | None
    can_read: bool | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._READ_ONLY = tuple(name for name, value in vars(cls).items() if isinstance(value, _ReadOnly))

    def __init__(self, **kwargs: Any) -> None:
        state = self.__dict__  # read-only fields live here under their names; their descriptors guard them
        for name in self._READ_ONLY:
            state[name] = kwargs.pop(name, None)
        for name in LOCK_ATTRIBUTES:
            object.__setattr__(self, name, kwargs.pop(name, None))
        # Like the original, unknown keyword arguments are accepted and ignored.

    @classmethod
    def _from_values(cls: type[M], values: dict[str, Any], locks: dict[str, Any]) -> M:
        """A model from ``values`` (every read-only field, by name; the dict becomes the model's own state, not
        copied) and ``locks`` (lock flags by attribute name; missing ones are ``None``): what ``__init__`` builds,
        without its per-keyword work. One dict per model, holding no containers, so the garbage collector does
        not track it: listings make thousands of models from one page."""
        for name in LOCK_ATTRIBUTES:
            values[name] = locks.get(name)
        model = cls.__new__(cls)
        object.__setattr__(model, "__dict__", values)
        return model

    def __setattr__(self, name: str, value: Any) -> None:
        if not (name in LOCK_ATTRIBUTES or name in self._READ_ONLY or name.startswith("_")):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} to set")
        object.__setattr__(self, name, value)  # a read-only field's descriptor refuses

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (*self._READ_ONLY, *LOCK_ATTRIBUTES)}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable lock flags

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._fields().items() if v is not None)
        return f"{type(self).__name__}({shown})"


class RepositoryProperties(_Model):
    """Properties of a repository (``/acr/v1/{name}``)."""

    name: _ReadOnly[str | None] = _ReadOnly()
    created_on: _ReadOnly[datetime | None] = _ReadOnly()
    last_updated_on: _ReadOnly[datetime | None] = _ReadOnly()
    manifest_count: _ReadOnly[int | None] = _ReadOnly()
    tag_count: _ReadOnly[int | None] = _ReadOnly()

    @property
    def last_udpated_on(self) -> datetime | None:
        """Deprecated misspelling kept for compatibility; use ``last_updated_on``."""
        warnings.warn("last_udpated_on is deprecated; use last_updated_on", DeprecationWarning, stacklevel=2)
        return self.last_updated_on


class ArtifactTagProperties(_Model):
    """Properties of a tag."""

    name: _ReadOnly[str | None] = _ReadOnly()
    digest: _ReadOnly[str | None] = _ReadOnly()
    created_on: _ReadOnly[datetime | None] = _ReadOnly()
    last_updated_on: _ReadOnly[datetime | None] = _ReadOnly()
    repository_name: _ReadOnly[str | None] = _ReadOnly()


class ArtifactManifestProperties(_Model):
    """Properties of a manifest.

    Beyond the original: ``media_type``, ``config_media_type`` and ``references`` (the child manifests of an
    index, as ``ArtifactManifestProperties`` with digest, architecture and operating system).
    """

    digest: _ReadOnly[str | None] = _ReadOnly()
    size_in_bytes: _ReadOnly[int | None] = _ReadOnly()
    created_on: _ReadOnly[datetime | None] = _ReadOnly()
    last_updated_on: _ReadOnly[datetime | None] = _ReadOnly()
    architecture: _ReadOnly[ArtifactArchitecture | str | None] = _ReadOnly()
    operating_system: _ReadOnly[ArtifactOperatingSystem | str | None] = _ReadOnly()
    tags: _ReadOnly[list[str]] = _ReadOnly()
    repository_name: _ReadOnly[str | None] = _ReadOnly()
    registry: _ReadOnly[str | None] = _ReadOnly()
    media_type: _ReadOnly[str | None] = _ReadOnly()
    config_media_type: _ReadOnly[str | None] = _ReadOnly()
    references: _ReadOnly[list[ArtifactManifestProperties]] = _ReadOnly()

    def __init__(self, **kwargs: Any) -> None:
        architecture = kwargs.pop("cpu_architecture", None)
        architecture = kwargs.pop("architecture", architecture)
        super().__init__(**kwargs)
        state = self.__dict__
        state["architecture"] = _enum_or_str(ArtifactArchitecture, architecture)
        state["operating_system"] = _enum_or_str(ArtifactOperatingSystem, state["operating_system"])
        state["tags"] = list(state["tags"] or [])
        state["references"] = list(state["references"] or [])

    @property
    def fully_qualified_reference(self) -> str:
        """``registry/repository@sha256:…`` (the original drops the ``sha256:`` prefix; this keeps it)."""
        return f"{self.registry}/{self.repository_name}@{self.digest}"


class GetManifestResult:
    """The result of ``get_manifest``: the parsed JSON ``manifest``, its ``media_type`` and ``digest``.

    ``content`` holds the exact bytes; ``data`` is a fresh binary stream over them (the name the
    beta ``download_manifest`` used).
    """

    def __init__(self, *, manifest: Any, media_type: str, digest: str, content: bytes | None = None) -> None:
        self.manifest = manifest
        self.media_type = media_type
        self.digest = digest
        self.content = content if content is not None else b""

    @property
    def data(self) -> io.BytesIO:
        return io.BytesIO(self.content)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GetManifestResult):
            return NotImplemented
        return (self.digest, self.media_type, self.content) == (other.digest, other.media_type, other.content)

    __hash__ = None  # type: ignore[assignment]  # compared by value (above): not a dict key

    def __repr__(self) -> str:
        return f"GetManifestResult(digest={self.digest!r}, media_type={self.media_type!r}, size={len(self.content)})"


#: The name the seed document's ``download_manifest`` returns.
DownloadManifestResult = GetManifestResult
