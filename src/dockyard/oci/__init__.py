"""The OCI data model, pure and I/O-free: digests, media types, names, references, manifests; and the
vocabulary client, server and CLI share: ``hosts`` (registry hosts and endpoints), ``scopes`` (token scopes
and actions), ``ranges`` (``Range``/``Content-Range``), ``locks`` (ACR lock flags)."""

from . import mediatypes
from .digest import ALGORITHMS, Digest, Hasher, InvalidDigestError, compute_digest, is_digest, parse_digest
from .manifest import (
    Descriptor,
    ImageConfig,
    InvalidManifestError,
    Manifest,
    Platform,
    parse_image_config,
    parse_manifest,
)
from .names import (
    InvalidNameError,
    InvalidTagError,
    is_valid_repository,
    is_valid_tag,
    validate_repository,
    validate_tag,
)
from .reference import InvalidReferenceError, Reference

__all__ = [
    "ALGORITHMS",
    "Descriptor",
    "Digest",
    "Hasher",
    "ImageConfig",
    "InvalidDigestError",
    "InvalidManifestError",
    "InvalidNameError",
    "InvalidReferenceError",
    "InvalidTagError",
    "Manifest",
    "Platform",
    "Reference",
    "compute_digest",
    "is_digest",
    "is_valid_repository",
    "is_valid_tag",
    "mediatypes",
    "parse_digest",
    "parse_image_config",
    "parse_manifest",
    "validate_repository",
    "validate_tag",
]
