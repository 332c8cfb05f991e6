"""Content digests: parsing, validation and streaming hashers (OCI image-spec "descriptor" digests)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: Registered algorithms and the length of their lowercase hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
DEFAULT_ALGORITHM = "sha256"

_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


class InvalidDigestError(ValueError):
    """The string is not a digest, or uses an algorithm dockyard does not support."""


@dataclass(frozen=True, order=True)
class Digest:
    """A validated ``algorithm:hex`` digest."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate ``value``; raise :class:`InvalidDigestError` when it is not a supported digest."""
        if not isinstance(value, str) or not _GRAMMAR.fullmatch(value):
            raise InvalidDigestError(f"invalid digest {value!r}: expected 'algorithm:hex'")
        algorithm, encoded = value.split(":", 1)
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r} (supported: sha256, sha512)")
        if len(encoded) != length or not all(c in "0123456789abcdef" for c in encoded):
            raise InvalidDigestError(f"invalid {algorithm} digest {value!r}: expected {length} lowercase hex digits")
        return cls(algorithm, encoded)


def parse_digest(value: str) -> Digest:
    """Parse ``value`` as a digest (see :meth:`Digest.parse`)."""
    return Digest.parse(value)


def is_digest(value: str) -> bool:
    """True when ``value`` is a valid, supported digest string."""
    try:
        Digest.parse(value)
    except InvalidDigestError:
        return False
    return True


def is_digest_reference(reference: str) -> bool:
    """True when a manifest reference is a digest rather than a tag: it has a ``:``, which a tag never does."""
    return ":" in reference


class Hasher:
    """A streaming hasher that yields a digest string; feed it with :meth:`update`."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = DEFAULT_ALGORITHM) -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def copy(self) -> Hasher:
        clone = Hasher.__new__(Hasher)
        clone.algorithm = self.algorithm
        clone._hash = self._hash.copy()
        clone.size = self.size
        return clone

    @property
    def digest(self) -> str:
        """The ``algorithm:hex`` digest of everything fed so far."""
        return f"{self.algorithm}:{self._hash.hexdigest()}"


def compute_digest(data: bytes | bytearray | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    hasher = Hasher(algorithm)
    hasher.update(data)
    return hasher.digest
