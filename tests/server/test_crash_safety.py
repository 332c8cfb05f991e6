"""Crash safety: SIGKILL ``dockyard serve`` in the middle of 20 concurrent uploads and pushes, restart, verify.

After the restart on the same data directory:

* every blob file on disk hashes to the digest its path names;
* every tag resolves to a stored manifest whose blobs (and child manifests) exist, every push or upload the
  server acknowledged before the kill is still there with the same bytes, and every acknowledged delete stays done;
* each upload session that was in flight either resumes (PATCH at the offset the server reports, then PUT with
  the digest) and yields exactly the intended blob, or is cleanly gone (404 BLOB_UPLOAD_UNKNOWN).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from tests.support.images import make_image, make_index, push, random_bytes
from tests.support.servers import DockyardServer

UPLOAD_WORKERS = 10
PUSH_WORKERS = 10
CHUNK = 64 * 1024
CHUNKS_PER_BLOB = 16
#: What to wait for before the kill (a trigger, not a measurement): finished pushes and uploads, and more.
KILL_AFTER_TAGS = 30
KILL_AFTER_BLOBS = 5
KILL_AFTER_DELETES = 3


@dataclass
class Session:
    """An upload a worker had started and not finished when the server died."""

    repo: str
    location: str
    data: bytes
    acked: int  # bytes the server acknowledged (202 to a PATCH)


@dataclass
class Ledger:
    """What the workers saw the server acknowledge, shared between threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: threading.Condition = field(init=False)
    acks: int = 0
    blobs: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> (repo, data), 201 received
    tags: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, tag) -> digest, 201 received
    attempted: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (repo, tag) -> digests tried
    deleted: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, tag) -> digest, 202 received
    failures: list[str] = field(default_factory=list)  # unexpected worker errors (anything but the kill)
    open_sessions: list[Session] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.progress = threading.Condition(self.lock)

    def ack(self) -> None:
        with self.lock:
            self.acks += 1
            self.progress.notify_all()


def upload_worker(server: DockyardServer, ledger: Ledger, worker: int, cycle: int) -> None:
    """Chunked uploads (POST, PATCH x 16 with Content-Range, PUT ?digest=) until the server goes away."""
    repo = f"crash/uploads-{worker}"
    round_ = 0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        while not ledger.stop.is_set():
            data = random_bytes(CHUNK * CHUNKS_PER_BLOB - worker, seed=f"upload-{cycle}-{worker}-{round_}")
            round_ += 1
            session: Session | None = None
            try:
                start = http.post(f"/v2/{repo}/blobs/uploads/")
                assert start.status_code == 202, start.text
                session = Session(repo, start.headers["Location"], data, 0)
                for offset in range(0, len(data), CHUNK):
                    piece = data[offset : offset + CHUNK]
                    response = http.patch(
                        session.location,
                        content=piece,
                        headers={
                            "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                            "Content-Type": "application/octet-stream",
                        },
                    )
                    assert response.status_code == 202, response.text
                    session.location = response.headers["Location"]
                    session.acked = offset + len(piece)
                    ledger.ack()
                digest = compute_digest(data)
                done = http.put(session.location, params={"digest": digest})
                assert done.status_code == 201, done.text
                with ledger.lock:
                    ledger.blobs[digest] = (repo, data)
                ledger.ack()
            except httpx.TransportError:
                if session is not None:
                    with ledger.lock:
                        ledger.open_sessions.append(session)
                return


def push_worker(server: DockyardServer, ledger: Ledger, worker: int, cycle: int) -> None:
    """Pushes until the server goes away: images, every third round a two-platform index, each by its own tag;
    ``latest`` moves to each image; every fourth round deletes the previous round's manifest by digest."""
    repo = f"crash/images-{worker}"
    round_ = 0
    previous: tuple[str, str] | None = None  # (tag, digest) of the last acknowledged push
    with httpx.Client(base_url=server.url, timeout=30) as http:
        while not ledger.stop.is_set():
            seed = f"push-{cycle}-{worker}-{round_}"
            if round_ % 3 == 2:
                content = make_index([make_image(layers=1, layer_size=20_000, seed=f"{seed}-{arch}", architecture=arch)
                                      for arch in ("amd64", "arm64")])
            else:
                content = make_image(layers=2, layer_size=30_000, seed=seed)
            tag = f"c{cycle}-t{round_}"
            delete_previous = round_ % 4 == 3 and previous is not None
            round_ += 1
            with ledger.lock:
                ledger.attempted.setdefault((repo, tag), set()).add(content.digest)
                ledger.attempted.setdefault((repo, "latest"), set()).add(content.digest)
            try:
                push(content, server.url, repo, tag, client=http)
                with ledger.lock:
                    ledger.tags[(repo, tag)] = content.digest
                ledger.ack()
                if not content.is_index:
                    response = http.put(f"/v2/{repo}/manifests/latest", content=content.body,
                                        headers={"Content-Type": content.media_type})
                    assert response.status_code == 201, response.text
                    ledger.ack()
                if delete_previous and previous is not None:
                    old_tag, old_digest = previous
                    with ledger.lock:  # from here on its fate is open until the server answers
                        ledger.tags.pop((repo, old_tag), None)
                    response = http.delete(f"/v2/{repo}/manifests/{old_digest}")
                    assert response.status_code == 202, response.text
                    with ledger.lock:
                        ledger.deleted[(repo, old_tag)] = old_digest
                    ledger.ack()
                previous = (tag, content.digest)
            except httpx.TransportError:
                return


def _assert_blob_files_hash_to_names(data_dir: Path) -> int:
    checked = 0
    for path in (data_dir / "blobs").rglob("*"):
        if not path.is_file():
            continue
        algorithm = path.relative_to(data_dir / "blobs").parts[0]
        assert algorithm in ("sha256", "sha512"), f"unexpected file in the blob store: {path}"
        digest = hashlib.new(algorithm)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        assert digest.hexdigest() == path.name, f"{path} does not hash to its name"
        checked += 1
    return checked


def _assert_manifest_complete(http: httpx.Client, repo: str, reference: str) -> None:
    """``reference`` resolves to a stored manifest whose blobs (and, for an index, child manifests) all exist."""
    got = http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": mt.MANIFEST_ACCEPT})
    assert got.status_code == 200, f"{repo}:{reference} does not resolve: {got.status_code} {got.text}"
    assert got.headers["Docker-Content-Digest"] == compute_digest(got.content)
    manifest = got.json()
    for child in manifest.get("manifests", []):
        _assert_manifest_complete(http, repo, child["digest"])
    for desc in [manifest["config"], *manifest["layers"]] if "config" in manifest else []:
        head = http.head(f"/v2/{repo}/blobs/{desc['digest']}")
        assert head.status_code == 200, f"{repo}@{reference} names missing blob {desc['digest']}"
        assert int(head.headers["Content-Length"]) == desc["size"]


def _assert_every_tag_resolves(http: httpx.Client) -> int:
    catalog = http.get("/v2/_catalog", params={"n": 10_000})
    assert catalog.status_code == 200
    resolved = 0
    for repo in catalog.json()["repositories"]:
        tags = http.get(f"/v2/{repo}/tags/list", params={"n": 10_000})
        assert tags.status_code == 200, tags.text
        for tag in tags.json()["tags"] or []:
            _assert_manifest_complete(http, repo, tag)
            resolved += 1
    return resolved


def _guarded(worker: Callable[..., None], ledger: Ledger, *args: object) -> Callable[[], None]:
    """Run ``worker``; an unexpected exception is recorded (and fails the test) instead of dying unseen."""

    def run() -> None:
        try:
            worker(*args)
        except BaseException as exc:
            with ledger.lock:
                ledger.failures.append(f"{worker.__name__}{args[2:]}: {exc!r}")
                ledger.progress.notify_all()

    return run


def _crash_cycle(server: DockyardServer, ledger: Ledger, cycle: int) -> None:
    """Start the server, run 20 workers until enough is acknowledged, SIGKILL it, wait for the workers."""
    server.start()
    ledger.stop.clear()
    with ledger.lock:
        tags_before, blobs_before, deletes_before = len(ledger.tags), len(ledger.blobs), len(ledger.deleted)
    threads = [threading.Thread(target=_guarded(upload_worker, ledger, server, ledger, i, cycle), daemon=True)
               for i in range(UPLOAD_WORKERS)]
    threads += [threading.Thread(target=_guarded(push_worker, ledger, server, ledger, i, cycle), daemon=True)
                for i in range(PUSH_WORKERS)]
    for thread in threads:
        thread.start()
    with ledger.lock:
        reached = ledger.progress.wait_for(
            lambda: bool(ledger.failures)
            or (
                len(ledger.tags) - tags_before >= KILL_AFTER_TAGS
                and len(ledger.blobs) - blobs_before >= KILL_AFTER_BLOBS
                and len(ledger.deleted) - deletes_before >= KILL_AFTER_DELETES
            ),
            timeout=90,
        )
    if not reached or ledger.failures:
        ledger.stop.set()
    assert not ledger.failures, ledger.failures
    assert reached, f"too little progress before the kill ({ledger.acks} acks):\n{server.log()[-3000:]}"
    server.kill()  # SIGKILL, mid-flight
    ledger.stop.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert not ledger.failures, ledger.failures


def _verify_after_restart(server: DockyardServer, ledger: Ledger) -> tuple[int, int]:
    """Restart and check everything the module docstring promises; returns (resumed, gone) sessions."""
    server.start()
    assert _assert_blob_files_hash_to_names(server.data_dir) > 0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert _assert_every_tag_resolves(http) > 0

        # every acknowledged push survived, with its exact digest
        for (repo, tag), digest in ledger.tags.items():
            got = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": mt.MANIFEST_ACCEPT})
            assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest, (repo, tag)
        # every acknowledged delete stayed deleted
        for (repo, tag), digest in ledger.deleted.items():
            assert http.get(f"/v2/{repo}/manifests/{digest}").status_code == 404, (repo, tag, digest)
            assert http.get(f"/v2/{repo}/manifests/{tag}").status_code == 404, (repo, tag)
        # a moving tag points at one of the manifests that were pushed to it
        for (repo, tag), digests in ledger.attempted.items():
            if tag == "latest":
                got = http.head(f"/v2/{repo}/manifests/latest")
                if got.status_code == 200:
                    assert got.headers["Docker-Content-Digest"] in digests
        # every acknowledged blob upload survived, byte for byte
        for digest, (repo, data) in ledger.blobs.items():
            got = http.get(f"/v2/{repo}/blobs/{digest}")
            assert got.status_code == 200 and got.content == data, digest

        # interrupted sessions: resume from the reported offset, or cleanly gone
        assert ledger.open_sessions, "the kill should interrupt some uploads"
        resumed = gone = 0
        for session in ledger.open_sessions:
            status = http.get(session.location)
            if status.status_code == 404:
                assert status.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
                gone += 1
                continue
            assert status.status_code == 204, status.text
            reported = status.headers.get("Range", "0-0")
            # "0-0" means 0 or 1 bytes (the spec's Range cannot say "empty"); try 0 first, then 1
            offsets = [0, 1] if reported == "0-0" else [int(reported.split("-")[1]) + 1]
            location = status.headers.get("Location", session.location)
            for offset in offsets:
                assert session.acked <= offset <= len(session.data) or (session.acked, offset) == (1, 0)
                if offset == len(session.data):  # everything arrived; only the final PUT was lost
                    break
                patched = http.patch(
                    location,
                    content=session.data[offset:],
                    headers={"Content-Range": f"{offset}-{len(session.data) - 1}",
                             "Content-Type": "application/octet-stream"},
                )
                if patched.status_code != 416:
                    break
            if offset < len(session.data):
                assert patched.status_code == 202, f"resuming at {offset}: {patched.status_code} {patched.text}"
                location = patched.headers["Location"]
            digest = compute_digest(session.data)
            done = http.put(location, params={"digest": digest})
            assert done.status_code == 201, f"resuming at {offset}: {done.status_code} {done.text}"
            assert done.headers["Docker-Content-Digest"] == digest
            assert http.get(f"/v2/{session.repo}/blobs/{digest}").content == session.data
            ledger.blobs[digest] = (session.repo, session.data)
            resumed += 1
        assert resumed + gone == len(ledger.open_sessions)
        ledger.open_sessions.clear()
    # and after all that, the store is still consistent
    assert _assert_blob_files_hash_to_names(server.data_dir) > 0
    server.stop()
    return resumed, gone


@pytest.mark.timeout(180)
def test_kill_during_concurrent_uploads_and_pushes(fresh_dockyard: DockyardServer) -> None:
    """Two crash cycles on one data directory: the second one crashes a store that already survived one."""
    ledger = Ledger()
    for cycle in range(2):
        _crash_cycle(fresh_dockyard, ledger, cycle)
        resumed, gone = _verify_after_restart(fresh_dockyard, ledger)
        assert resumed + gone > 0
