"""Registry URL paths: one place for how names, tags and digests go into URLs."""

from __future__ import annotations

from urllib.parse import quote


def _name(repository: str) -> str:
    if not repository or not isinstance(repository, str):
        raise ValueError("The parameter repository cannot be None or empty.")
    return quote(repository, safe="/")


def _ref(reference: str) -> str:
    if not reference or not isinstance(reference, str):
        raise ValueError("a tag or digest is required")
    return quote(reference, safe=":")


def manifest(repository: str, reference: str) -> str:
    """``/v2/<name>/manifests/<reference>``."""
    return f"/v2/{_name(repository)}/manifests/{_ref(reference)}"


def blob(repository: str, digest: str) -> str:
    """``/v2/<name>/blobs/<digest>``."""
    return f"/v2/{_name(repository)}/blobs/{_ref(digest)}"


def uploads(repository: str) -> str:
    """``/v2/<name>/blobs/uploads/``."""
    return f"/v2/{_name(repository)}/blobs/uploads/"


def tags_list(repository: str) -> str:
    """``/v2/<name>/tags/list``."""
    return f"/v2/{_name(repository)}/tags/list"


def referrers(repository: str, digest: str) -> str:
    """``/v2/<name>/referrers/<digest>``."""
    return f"/v2/{_name(repository)}/referrers/{_ref(digest)}"


def acr_repository(repository: str) -> str:
    """``/acr/v1/<name>``."""
    return f"/acr/v1/{_name(repository)}"


def acr_tags(repository: str) -> str:
    """``/acr/v1/<name>/_tags``."""
    return f"/acr/v1/{_name(repository)}/_tags"


def acr_tag(repository: str, tag: str) -> str:
    """``/acr/v1/<name>/_tags/<tag>``."""
    return f"/acr/v1/{_name(repository)}/_tags/{_ref(tag)}"


def acr_manifests(repository: str) -> str:
    """``/acr/v1/<name>/_manifests``."""
    return f"/acr/v1/{_name(repository)}/_manifests"


def acr_manifest(repository: str, digest: str) -> str:
    """``/acr/v1/<name>/_manifests/<digest>``."""
    return f"/acr/v1/{_name(repository)}/_manifests/{_ref(digest)}"


V2_CATALOG = "/v2/_catalog"
ACR_CATALOG = "/acr/v1/_catalog"
#: The ``api-version`` the original SDK sends on single-resource ``/acr/v1`` calls.
API_VERSION = "2021-07-01"
SUPPORTED_API_VERSIONS = ("2019-08-15-preview", "2021-07-01")
