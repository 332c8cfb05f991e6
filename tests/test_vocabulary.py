"""Each shared vocabulary is defined once in ``dockyard.oci`` and used by client, server and CLI."""

from __future__ import annotations

import pytest

from dockyard import models
from dockyard.cli import locks as cli_locks
from dockyard.oci import locks, mediatypes, ranges, scopes
from dockyard.oci.digest import compute_digest
from dockyard.oci.manifest import EMPTY_DESCRIPTOR, EMPTY_JSON
from dockyard.protocol import wire
from dockyard.protocol.challenges import GUESSED_SCOPES
from dockyard.server.auth import scopes as server_scopes
from dockyard.server.storage import records as server_records
from dockyard.workflows.safe_extract import UnsafePathError, entry_path
from dockyard.workflows.safetar import ArchiveError, member_name


def test_lock_flags_come_from_one_table() -> None:
    assert server_records.ATTRIBUTE_FIELDS is locks.COLUMN_BY_WIRE
    assert wire.WIRE_BY_ATTRIBUTE is locks.WIRE_BY_ATTRIBUTE
    assert models.LOCK_ATTRIBUTES is locks.LOCK_ATTRIBUTES
    assert cli_locks.lock_changes("false", None, None, "true") == {"can_delete": False, "can_list": True}
    props = models.RepositoryProperties(can_read=True)
    assert {name: getattr(props, name) for name in locks.LOCK_ATTRIBUTES}["can_read"] is True


def test_scopes_come_from_one_grammar() -> None:
    assert server_scopes.Scope is scopes.Scope and server_scopes.READ_ACTIONS is scopes.READ_ACTIONS
    for guess in GUESSED_SCOPES.values():
        parsed = scopes.Scope.parse(guess)
        assert parsed is not None and str(parsed) == guess
    assert server_scopes.Access("repository", "a/b", scopes.PULL).scope() == "repository:a/b:pull"


def test_ranges_round_trip() -> None:
    assert ranges.parse_content_range(ranges.content_range(5, 9, 10)) == (5, 9, 10)
    assert ranges.parse_range(ranges.range_header(5), 10) == (5, 9)
    assert ranges.parse_upload_range(ranges.upload_range(0, 99)) == (0, 99)


def test_accept_list_and_empty_descriptor() -> None:
    assert mediatypes.MANIFEST_ACCEPT.split(", ")[0] == mediatypes.OCI_MANIFEST
    assert EMPTY_DESCRIPTOR.digest == compute_digest(EMPTY_JSON) and EMPTY_DESCRIPTOR.size == 2


@pytest.mark.parametrize("name", ["", "/abs", "../up", "a/../../b", "a\\b", "a\0b", ".", "./"])
def test_archive_reading_and_unpacking_refuse_the_same_member_names(name: str) -> None:
    with pytest.raises(ArchiveError):
        member_name(name)
    with pytest.raises(UnsafePathError):
        entry_path(name, "a")
