"""The htpasswd file is watched (inotify) instead of looked at on every request: a change made on this host still
applies to the next request, and one the watch cannot see within ``--htpasswd-recheck`` seconds."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.server.auth.htpasswd import UserFile
from tests.server.test_auth import bearer, token_for
from tests.support.servers import DockyardServer, write_htpasswd

ALICE = ("alice", "alice-pass-1")
BOB = ("bob", "bob-pass-1")
SCOPE = "registry:catalog:*"

pytestmark = pytest.mark.skipif(not Path("/proc/sys/fs/inotify").exists(), reason="inotify is Linux-only")


def catalog(server: DockyardServer, token: str) -> int:
    return httpx.get(f"{server.url}/v2/_catalog", headers=bearer(token)).status_code


def login(server: DockyardServer, auth: tuple[str, str]) -> int:
    return httpx.get(f"{server.url}/v2/", auth=auth).status_code


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    (tmp_path / "users").mkdir()
    return write_htpasswd(tmp_path / "users" / "htpasswd", dict([ALICE, BOB]))


@pytest.fixture
def slow_recheck(tmp_path: Path, users_file: Path) -> Iterator[DockyardServer]:
    """A server that looks at the file by itself only once an hour: what it sees at once, inotify told it."""
    with DockyardServer(tmp_path / "server", "--htpasswd", str(users_file), "--htpasswd-recheck", "3600") as running:
        yield running  # type: ignore[misc]


def test_changes_on_this_host_apply_to_the_next_request(slow_recheck: DockyardServer, users_file: Path) -> None:
    server = slow_recheck
    token = token_for(server, SCOPE, auth=ALICE)
    assert catalog(server, token) == 200 and catalog(server, token) == 200  # verified, then from the cache
    # Rewritten in place (truncate and write): the old password and its tokens stop at once.
    write_htpasswd(users_file, {ALICE[0]: "alice-pass-2", BOB[0]: BOB[1]})
    assert catalog(server, token) == 401
    assert login(server, ALICE) == 401
    assert login(server, (ALICE[0], "alice-pass-2")) == 200
    # Replaced atomically (written beside it, renamed over it), as editors and `dockyard user` do: Bob goes.
    replacement = users_file.with_name("htpasswd.new")
    write_htpasswd(replacement, {ALICE[0]: "alice-pass-2"})
    os.replace(replacement, users_file)
    assert login(server, BOB) == 401
    assert login(server, (ALICE[0], "alice-pass-2")) == 200
    # Removed: nobody is let in; put back: in again.
    users_file.unlink()
    assert login(server, (ALICE[0], "alice-pass-2")) == 401
    write_htpasswd(users_file, dict([ALICE]))
    assert login(server, ALICE) == 200


def test_a_change_the_watch_cannot_see_applies_within_the_recheck_interval(tmp_path: Path) -> None:
    """A symlink in a third directory is re-pointed: no watched directory changes, the periodic look finds it."""
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    old = write_htpasswd(tmp_path / "c" / "old", dict([ALICE, BOB]))
    new = write_htpasswd(tmp_path / "c" / "new", dict([BOB]))
    (tmp_path / "b" / "current").symlink_to(old)
    users_file = tmp_path / "a" / "htpasswd"
    users_file.symlink_to(tmp_path / "b" / "current")
    with DockyardServer(tmp_path / "server", "--htpasswd", str(users_file), "--htpasswd-recheck", "0.5") as server:
        token = token_for(server, SCOPE, auth=ALICE)
        assert catalog(server, token) == 200
        pointer = tmp_path / "b" / "pointer"
        pointer.symlink_to(new)
        os.replace(pointer, tmp_path / "b" / "current")
        deadline = time.monotonic() + 10  # 0.5 s of recheck, with room for a busy machine
        while catalog(server, token) == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert catalog(server, token) == 401
        assert login(server, ALICE) == 401 and login(server, BOB) == 200


def test_a_replaced_directory_is_watched_again(tmp_path: Path) -> None:
    """The directory holding the file is moved away and a new one put in its place: the watch of the old one gives
    up, the file is looked at, and the new directory is watched from then on."""
    folder = tmp_path / "users"
    folder.mkdir()
    path = write_htpasswd(folder / "htpasswd", dict([ALICE]))

    async def scenario() -> None:
        users = UserFile(path, recheck=1.0)
        assert users.watch()
        try:
            assert not users.changed()  # the first look, right after the watch started
            assert not users.changed()  # nothing happened: no look needed
            folder.rename(tmp_path / "old-users")
            folder.mkdir()
            write_htpasswd(folder / "htpasswd", dict([BOB]))
            await asyncio.sleep(0.1)  # the loop reads the events
            assert users.changed()
            users.reload()
            assert set(users.users) == {"bob"}
            await asyncio.sleep(1.1)  # past the recheck interval: the new directory gets its watch
            assert not users.changed()
            write_htpasswd(folder / "htpasswd", dict([ALICE, BOB]))
            await asyncio.sleep(0.1)
            assert users.changed()  # reported by the new watch, long before the next periodic look
            users.reload()
            assert set(users.users) == {"alice", "bob"}
        finally:
            users.unwatch()

    asyncio.run(scenario())
