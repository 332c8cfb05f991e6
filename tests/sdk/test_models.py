"""Models and enums: the behaviour of azure-containerregistry 1.2's, plus the documented fixes.

Where the original behaves the same, the check runs on both implementations side by side.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from typing import Any

import pytest

import dockyard
from dockyard import (
    ArtifactArchitecture,
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactOperatingSystem,
    ArtifactTagOrder,
    ArtifactTagProperties,
    DigestValidationError,
    GetManifestResult,
    RepositoryProperties,
)
from tests.support.peers import require_module

DIGEST = "sha256:" + "ab" * 32
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def azure() -> Any:
    """The original package, for side-by-side checks."""
    require_module("azure.containerregistry", "azure-containerregistry")
    import azure.containerregistry as original

    return original


@pytest.fixture(params=["dockyard", "azure"])
def impl(request: pytest.FixtureRequest) -> Any:
    """The models module of either implementation."""
    return dockyard if request.param == "dockyard" else request.getfixturevalue("azure")


READ_ONLY = {
    "RepositoryProperties": ["name", "created_on", "last_updated_on", "manifest_count", "tag_count"],
    "ArtifactTagProperties": ["name", "digest", "created_on", "last_updated_on", "repository_name"],
    "ArtifactManifestProperties": [
        "digest", "size_in_bytes", "created_on", "last_updated_on", "architecture", "operating_system",
        "tags", "repository_name", "fully_qualified_reference",
    ],
}
LOCKS = ["can_delete", "can_write", "can_list", "can_read"]


@pytest.mark.parametrize("model", sorted(READ_ONLY))
def test_read_only_attributes_raise(impl: Any, model: str) -> None:
    instance = getattr(impl, model)(digest=DIGEST, name="n", repository_name="r")
    for attribute in READ_ONLY[model]:
        before = getattr(instance, attribute)
        with pytest.raises(AttributeError):
            setattr(instance, attribute, "changed")
        assert getattr(instance, attribute) == before


@pytest.mark.parametrize("model", sorted(READ_ONLY))
def test_lock_flags_are_writable(impl: Any, model: str) -> None:
    instance = getattr(impl, model)(can_delete=True)
    assert instance.can_delete is True
    assert instance.can_write is None
    for flag in LOCKS:
        setattr(instance, flag, False)
        assert getattr(instance, flag) is False


def test_constructor_keywords_match_the_original(impl: Any) -> None:
    repo = impl.RepositoryProperties(
        name="lib/app", created_on=WHEN, last_updated_on=WHEN, manifest_count=3, tag_count=2, can_read=False
    )
    assert (repo.name, repo.created_on, repo.manifest_count, repo.tag_count, repo.can_read) == (
        "lib/app", WHEN, 3, 2, False
    )
    tag = impl.ArtifactTagProperties(name="v1", digest=DIGEST, created_on=WHEN, last_updated_on=WHEN,
                                     repository_name="lib/app")
    assert (tag.name, tag.digest, tag.repository_name, tag.last_updated_on) == ("v1", DIGEST, "lib/app", WHEN)
    manifest = impl.ArtifactManifestProperties(cpu_architecture="arm64", operating_system="linux", digest=DIGEST,
                                               size_in_bytes=10, tags=["v1"], repository_name="lib/app")
    assert manifest.architecture == impl.ArtifactArchitecture.ARM64
    assert isinstance(manifest.architecture, impl.ArtifactArchitecture)
    assert manifest.operating_system is impl.ArtifactOperatingSystem.LINUX
    assert (manifest.size_in_bytes, manifest.tags, manifest.digest) == (10, ["v1"], DIGEST)


def test_unknown_architecture_and_os_kept_as_strings(impl: Any) -> None:
    manifest = impl.ArtifactManifestProperties(cpu_architecture="loong64", operating_system="haiku")
    assert manifest.architecture == "loong64"
    assert not isinstance(manifest.architecture, impl.ArtifactArchitecture)
    assert manifest.operating_system == "haiku"
    assert impl.ArtifactManifestProperties().architecture is None


def test_enums_compare_to_strings_and_look_up_names_case_insensitively(impl: Any) -> None:
    assert impl.ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING == "timedesc"
    assert impl.ArtifactManifestOrder.LAST_UPDATED_ON_ASCENDING == "timeasc"
    assert impl.ArtifactTagOrder["last_updated_on_descending"] is impl.ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING
    assert impl.ArtifactManifestOrder.none is impl.ArtifactManifestOrder.NONE
    assert impl.ArtifactArchitecture("386") is impl.ArtifactArchitecture.I386
    assert impl.ArtifactOperatingSystem("windows") is impl.ArtifactOperatingSystem.WINDOWS
    assert impl.ArtifactArchitecture.i386 is impl.ArtifactArchitecture.I386
    assert {a.value for a in impl.ArtifactArchitecture} == {a.value for a in ArtifactArchitecture}
    assert {o.value for o in impl.ArtifactOperatingSystem} == {o.value for o in ArtifactOperatingSystem}


def test_enum_values_match_the_original(azure: Any) -> None:
    for ours, theirs in [
        (ArtifactTagOrder, azure.ArtifactTagOrder),
        (ArtifactManifestOrder, azure.ArtifactManifestOrder),
        (ArtifactArchitecture, azure.ArtifactArchitecture),
        (ArtifactOperatingSystem, azure.ArtifactOperatingSystem),
    ]:
        assert {m.name: m.value for m in ours} == {m.name: m.value for m in theirs}


def test_enum_values_accepted_in_any_case() -> None:
    # Beyond the original (which only folds member names): values in any case too.
    assert ArtifactTagOrder("TIMEDESC") is ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING
    assert ArtifactArchitecture("AMD64") is ArtifactArchitecture.AMD64
    assert ArtifactManifestOrder("Last_Updated_On_Ascending") is ArtifactManifestOrder.LAST_UPDATED_ON_ASCENDING
    assert str(ArtifactOperatingSystem.LINUX) == "linux"
    assert f"{ArtifactArchitecture.ARM64}" == "arm64"
    with pytest.raises(ValueError):
        ArtifactTagOrder("sideways")


def test_equality_and_repr() -> None:
    a = ArtifactTagProperties(name="v1", digest=DIGEST, repository_name="r", created_on=WHEN)
    b = ArtifactTagProperties(name="v1", digest=DIGEST, repository_name="r", created_on=WHEN)
    assert a == b
    b.can_delete = False
    assert a != b
    assert a != ArtifactTagProperties(name="v2", digest=DIGEST, repository_name="r", created_on=WHEN)
    assert a != RepositoryProperties(name="v1")
    text = repr(a)
    assert text.startswith("ArtifactTagProperties(") and "'v1'" in text and DIGEST in text
    assert "RepositoryProperties(" in repr(RepositoryProperties(name="lib/app")) and "lib/app" in repr(
        RepositoryProperties(name="lib/app")
    )
    m1 = ArtifactManifestProperties(digest=DIGEST, cpu_architecture="amd64", tags=["x"])
    m2 = ArtifactManifestProperties(digest=DIGEST, cpu_architecture="amd64", tags=["x"])
    assert m1 == m2 and "amd64" in repr(m1)
    assert m1 != ArtifactManifestProperties(digest=DIGEST, cpu_architecture="arm64", tags=["x"])


def test_tags_list_is_a_copy() -> None:
    manifest = ArtifactManifestProperties(tags=["a"])
    manifest.tags.append("b")
    assert manifest.tags == ["a"]


def test_fully_qualified_reference_keeps_the_algorithm(azure: Any) -> None:
    ours = ArtifactManifestProperties(digest=DIGEST, repository_name="lib/app", registry="127.0.0.1:5000")
    assert ours.fully_qualified_reference == f"127.0.0.1:5000/lib/app@{DIGEST}"
    theirs = azure.ArtifactManifestProperties(digest=DIGEST, repository_name="lib/app", registry="127.0.0.1:5000")
    # The original drops the "sha256:" prefix, giving a reference no tool can pull.
    assert not theirs.fully_qualified_reference.endswith(DIGEST)


def test_deprecated_misspelling_warns() -> None:
    repo = RepositoryProperties(last_updated_on=WHEN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert repo.last_udpated_on == WHEN
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_get_manifest_result() -> None:
    content = b'{"schemaVersion":2}'
    result = GetManifestResult(manifest={"schemaVersion": 2}, media_type="m", digest=DIGEST, content=content)
    assert (result.manifest, result.media_type, result.digest) == ({"schemaVersion": 2}, "m", DIGEST)
    assert result.data.read() == content
    assert result.data.read() == content  # a fresh stream each time
    assert result == GetManifestResult(manifest={}, media_type="m", digest=DIGEST, content=content)
    assert DIGEST in repr(result)
    assert dockyard.DownloadManifestResult is GetManifestResult


def test_digest_validation_error_is_a_value_error(azure: Any) -> None:
    error = DigestValidationError("mismatch")
    assert isinstance(error, ValueError)
    assert error.message == "mismatch"
    assert issubclass(azure.DigestValidationError, ValueError)


def test_errors_are_azure_core_errors() -> None:
    require_module("azure.core", "azure-core")
    from azure.core import exceptions as core

    for name in ["ResourceNotFoundError", "ResourceExistsError", "ClientAuthenticationError", "HttpResponseError",
                 "ServiceRequestError"]:
        assert issubclass(getattr(dockyard, name), getattr(core, name)), name
    error = dockyard.ResourceNotFoundError(status_code=404, error_code="MANIFEST_UNKNOWN")
    assert isinstance(error, core.HttpResponseError)
    assert (error.status_code, error.error_code) == (404, "MANIFEST_UNKNOWN")


def test_tag_from_a_listing_page_is_the_same_model() -> None:
    """Listing pages build tags without the keyword constructor; the result is indistinguishable from it."""
    from dockyard.protocol.wire import tag_from_wire

    wire = {
        "name": "v1",
        "digest": "sha256:" + "a" * 64,
        "createdTime": "2026-01-02T03:04:05.123456Z",
        "lastUpdateTime": "2026-01-02T03:04:06Z",
        "changeableAttributes": {"deleteEnabled": False, "writeEnabled": True, "readEnabled": True},
    }
    parsed = tag_from_wire(wire, "team/app")
    built = ArtifactTagProperties(
        name="v1",
        digest="sha256:" + "a" * 64,
        created_on=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        last_updated_on=datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc),
        repository_name="team/app",
        can_delete=False,
        can_write=True,
        can_read=True,
    )
    assert parsed == built
    assert repr(parsed) == repr(built)
    assert parsed.can_list is None  # absent on the wire: unknown, as the constructor leaves it
    with pytest.raises(AttributeError):
        parsed.name = "v2"  # type: ignore[misc]
    parsed.can_list = True
    assert parsed.can_list is True
    with pytest.raises(AttributeError):
        parsed.something_else = 1  # type: ignore[attr-defined]
    assert tag_from_wire({}, "team/app") == ArtifactTagProperties(repository_name="team/app")


def test_listing_built_tags_leave_the_garbage_collector_little_to_walk() -> None:
    """A listing page builds thousands of tags at once: each keeps its fields in one dict of plain values,
    which the cyclic garbage collector does not track (a full collection would otherwise walk them all)."""
    import copy
    import gc
    import pickle

    from dockyard.protocol.wire import tag_from_wire

    wire = {"name": "v1", "digest": "sha256:" + "b" * 64, "createdTime": "2026-01-02T03:04:05Z",
            "lastUpdateTime": "2026-01-02T03:04:05Z", "changeableAttributes": {"listEnabled": True}}
    tag = tag_from_wire(wire, "team/app")
    assert not gc.is_tracked(vars(tag))
    assert pickle.loads(pickle.dumps(tag)) == tag
    duplicate = copy.copy(tag)
    duplicate.can_list = False
    assert tag.can_list is True and duplicate != tag
