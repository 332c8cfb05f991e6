"""Attacks on the password check of ``dockyard serve --htpasswd``: a flood of wrong passwords must not stall
other clients, a client that keeps failing is throttled (429), and unknown users cost a bcrypt check too."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.server.test_auth import bearer, token_for
from tests.server.test_distribution_api import assert_error
from tests.support.servers import DockyardServer, write_htpasswd

USER = ("owner", "the-right-password")
#: The cost ``htpasswd -B`` and most tools default to or above: each check takes a noticeable fraction of a second.
COST = 12


@pytest.fixture(scope="module")
def costly_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("costly") / "htpasswd"
    path.write_text(f"{USER[0]}:{bcrypt.hashpw(USER[1].encode(), bcrypt.gensalt(rounds=COST)).decode()}\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, costly_htpasswd: Path) -> Iterator[DockyardServer]:
    """Shared by the tests that come from fresh addresses (so the failed-login limit never applies to them)."""
    with DockyardServer(tmp_path_factory.mktemp("costly-server"), "--htpasswd", str(costly_htpasswd)) as running:
        yield running  # type: ignore[misc]


@pytest.fixture
def cheap_server(tmp_path: Path) -> Iterator[DockyardServer]:
    """Its own limiter state; cheap hashes (the limit does not depend on the cost)."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", dict([USER]))
    with DockyardServer(tmp_path / "server", "--htpasswd", str(htpasswd)) as running:
        yield running  # type: ignore[misc]


_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(1, 255), range(1, 255)))


def from_address(address: str | None = None) -> httpx.Client:
    """A client whose connections come from ``address`` (a fresh loopback address by default): many attackers."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address or next(_addresses)), timeout=60)


def wrong_login(server: DockyardServer, user: str = USER[0], client: httpx.Client | None = None) -> httpx.Response:
    """A wrong password for ``user``, from ``client`` (by default from a fresh address)."""
    if client is not None:
        return client.get(f"{server.url}/v2/", auth=(user, f"wrong-{uuid.uuid4().hex}"))
    with from_address() as http:
        return wrong_login(server, user, http)


def test_wrong_passwords_in_parallel_do_not_stall_other_clients(server: DockyardServer) -> None:
    token = token_for(server, "registry:catalog:*", auth=USER)
    assert httpx.get(f"{server.url}/v2/", auth=USER).status_code == 200
    stop = threading.Event()
    statuses: list[int] = []

    def attack() -> None:
        while not stop.is_set():
            statuses.append(wrong_login(server).status_code)

    attackers = [threading.Thread(target=attack) for _ in range(8)]
    for thread in attackers:
        thread.start()
    try:
        time.sleep(1.0)  # let the flood build up
        waits = []
        for _ in range(3):
            for request in (lambda: httpx.get(f"{server.url}/v2/_catalog", headers=bearer(token), timeout=30),
                            lambda: httpx.get(f"{server.url}/v2/", auth=USER, timeout=30)):
                started = time.monotonic()
                assert request().status_code == 200
                waits.append(time.monotonic() - started)
    finally:
        stop.set()
        for thread in attackers:
            thread.join()
    assert statuses and set(statuses) == {401}
    assert max(waits) < 2.0, waits


def test_a_client_failing_too_often_is_throttled(cheap_server: DockyardServer) -> None:
    server = cheap_server
    with from_address("127.0.0.1") as http:
        assert http.get(f"{server.url}/v2/", auth=USER).status_code == 200
        token = token_for(server, "registry:catalog:*", auth=USER)
        for _ in range(10):  # the default limit: 10 failures a minute
            assert_error(wrong_login(server, client=http), 401, "UNAUTHORIZED")
        throttled = wrong_login(server, client=http)
        assert_error(throttled, 429, "TOOMANYREQUESTS")
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # No password check at all from there: not for another user, nor for a right password not seen before.
        assert_error(wrong_login(server, "someone-else", client=http), 429, "TOOMANYREQUESTS")
        form = {"grant_type": "password", "username": USER[0], "password": "wrong", "service": server.host}
        assert_error(http.post(f"{server.url}/oauth2/token", data=form), 429, "TOOMANYREQUESTS")
        # What was already proven keeps working: the credentials checked a moment ago, and tokens.
        assert http.get(f"{server.url}/v2/", auth=USER).status_code == 200
        assert http.get(f"{server.url}/v2/_catalog", headers=bearer(token)).status_code == 200
    # Other addresses are not affected.
    assert_error(wrong_login(server), 401, "UNAUTHORIZED")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_unknown_users_cost_a_password_check_too(server: DockyardServer) -> None:
    """Server CPU time (not wall time, which a loaded machine blurs) for wrong passwords of a known user and of
    unknown users: each costs one bcrypt check of the same cost."""
    assert server.proc is not None
    spent = {}
    for kind, user in (("known", lambda: USER[0]), ("unknown", lambda: f"nobody-{uuid.uuid4().hex[:8]}")):
        before = _cpu_seconds(server.proc.pid)
        for _ in range(3):
            assert_error(wrong_login(server, user()), 401, "UNAUTHORIZED")
        spent[kind] = _cpu_seconds(server.proc.pid) - before
    assert spent["known"] > 0.1, spent  # bcrypt at cost 12 is measurable
    assert spent["unknown"] > 0.5 * spent["known"], spent
