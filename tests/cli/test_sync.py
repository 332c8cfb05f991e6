"""``dockyard sync`` between real registries (docker-registry with and without htpasswd, dockyard serve with token
auth) and OCI layout trees; request counts come from the destination's ``--access-log``."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.layout import OCILayout
from tests.cli.conftest import Cli, repo_digests, repo_tags
from tests.conftest import TEST_USER, unique
from tests.support.access_logs import WRITE_METHODS, logged_requests
from tests.support.images import make_artifact, make_image, make_multiarch_index, push
from tests.support.servers import DistributionServer, DockyardServer
from tests.support.skopeo import Skopeo


class CountedServer(DockyardServer):
    """A ``dockyard serve`` of one test with an access log, to count what a sync asked of it."""

    def __init__(self, workdir: Path) -> None:
        self.access_log = Path(workdir) / "access.log"
        super().__init__(workdir, "--access-log", str(self.access_log))

    def requests(self) -> list[dict[str, Any]]:
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line.strip()]

    def mark(self) -> int:
        return len(self.requests())

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.requests()[mark:]


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[CountedServer]:
    with CountedServer(tmp_path / "dest") as server:
        yield server  # type: ignore[misc]


def blob_writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests that upload or mount a blob."""
    return [e for e in entries if e["method"] in ("POST", "PATCH", "PUT") and "/blobs/uploads" in e["path"]]


def writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] in WRITE_METHODS]


def test_prefix_filters_and_second_run_moves_nothing(
    cli: Cli, distribution_server: DistributionServer, dest: CountedServer,
) -> None:
    prefix = unique("team")
    base = make_image(layers=2, seed=f"{prefix}-base", layer_size=4096)
    for name, tags in {"app": ("v1", "v2", "dev"), "db": ("v1",), "tools/test": ("v1",)}.items():
        for tag in tags:
            image = make_image(layers=1, seed=f"{prefix}-{name}-{tag}")
            push(image, distribution_server.url, f"{prefix}/{name}", tag)
    push(base, distribution_server.url, f"{prefix}/db", "base")
    push(base, distribution_server.url, f"{prefix}/app", "base")  # the same blobs in two repositories
    push(make_image(seed=f"{prefix}-outside"), distribution_server.url, f"{prefix}-other/app", "v1")

    args = ["sync", f"{distribution_server.host}/{prefix}", f"{dest.host}/mirror/{prefix}", "--exclude", "tools/.*",
            "--tags", "v[0-9]+|base", "-o", "json"]
    first = cli(*args).ok().json()
    by_repo = {r["source"].rsplit("/", 1)[-1]: r for r in first["repositories"]}
    assert set(by_repo) == {"app", "db"}  # tools/test excluded, team-other outside the prefix
    assert sorted(by_repo["app"]["tags_copied"]) == ["base", "v1", "v2"]  # dev does not match --tags as a whole
    assert repo_tags(cli, dest.host, f"mirror/{prefix}/app") == {"base", "v1", "v2"}
    assert repo_tags(cli, dest.host, f"mirror/{prefix}/db") == {"base", "v1"}
    assert first["failed"] == 0
    # The base image's blobs came once and were mounted into the other repository.
    assert first["blobs_mounted"] >= len(base.all_blobs())
    # Each blob of each repository was asked about once: no second HEAD before its upload.
    heads = [e["path"] for e in dest.requests() if e["method"] == "HEAD" and "/blobs/" in e["path"]]
    assert heads and len(heads) == len(set(heads))

    mark = dest.mark()
    second = cli(*args).ok().json()
    assert second["blobs_copied"] == 0 and second["blobs_mounted"] == 0 and second["tags_copied"] == 0
    assert second["tags_skipped"] == 5
    assert writes(dest.since(mark)) == []  # not one upload, mount or manifest PUT


def test_dry_run_writes_nothing(cli: Cli, distribution_server: DistributionServer, dest: CountedServer,
                                tmp_path: Path) -> None:
    prefix = unique("dry")
    image = make_image(layers=2, seed=prefix)
    push(image, distribution_server.url, f"{prefix}/app", "v1")
    mark = dest.mark()
    plan = cli("sync", f"{distribution_server.host}/{prefix}", f"{dest.host}/{prefix}", "--dry-run",
               "-o", "json").ok().json()
    assert plan["dry_run"] is True
    assert plan["repositories"][0]["tags_copied"] == ["v1"]
    assert plan["blobs_copied"] == len(image.all_blobs())
    assert writes(dest.since(mark)) == []
    assert cli("repo", "list", "-r", dest.host, "-o", "json").ok().json() == []
    layout_dir = tmp_path / "never"
    cli("sync", f"{distribution_server.host}/{prefix}", f"oci:{layout_dir}", "--dry-run").ok()
    assert not layout_dir.exists()


def test_platforms_rewrite_the_index_once(cli: Cli, dockyard_server: DockyardServer, dest: CountedServer) -> None:
    prefix = unique("multi")
    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/arm/v7"), seed=prefix, layers=1)
    push(index, dockyard_server.url, f"{prefix}/app", "v1")
    args = ["sync", f"{dockyard_server.host}/{prefix}", f"{dest.host}/{prefix}", "--platform", "linux/arm64",
            "-o", "json"]
    first = cli(*args).ok().json()
    arm = next(c for c in index.children if str(c.platform) == "linux/arm64")
    assert first["blobs_copied"] == len(arm.all_blobs())  # only the arm64 image's blobs moved
    copied = json.loads(cli("manifest", "get", "-r", dest.host, f"{prefix}/app:v1").ok().stdout)
    assert [m["digest"] for m in copied["manifests"]] == [arm.digest]
    second = cli(*args).ok().json()  # the rewritten index has the same digest every time: nothing to do
    assert second["tags_skipped"] == 1 and second["blobs_copied"] == 0 and second["manifests"] == 0


@pytest.mark.parametrize("source_kind", ["dockyard", "distribution"])
def test_referrers_come_along(
    cli: Cli, source_kind: str, dockyard_server: DockyardServer, distribution_server: DistributionServer,
    dest: CountedServer,
) -> None:
    source = dockyard_server if source_kind == "dockyard" else distribution_server
    prefix = unique("refs")
    image = make_image(seed=prefix)
    push(image, source.url, f"{prefix}/app", "v1")
    sig = make_artifact({"sig": prefix.encode()}, artifact_type="application/vnd.example.sig", subject=image)
    push(sig, source.url, f"{prefix}/app")
    if source_kind == "distribution":  # no referrers API: the SDK lists the signature in the tag-schema index
        from dockyard import ContainerRegistryClient

        with ContainerRegistryClient(source.url, None) as client:
            client.set_manifest(f"{prefix}/app", sig.body, media_type=sig.media_type)
    found = cli("manifest", "referrers", "-r", source.host, f"{prefix}/app:v1", "-o", "json").ok().json()
    assert [d["digest"] for d in found] == [sig.digest]

    args = ["sync", f"{source.host}/{prefix}", f"{dest.host}/{prefix}", "--referrers", "-o", "json"]
    result = cli(*args).ok().json()
    assert result["repositories"][0]["tags_copied"] == ["v1"]  # the sha256-… schema tag is not a tag to copy
    assert result["repositories"][0]["referrers_copied"] == [sig.digest]
    found = cli("manifest", "referrers", "-r", dest.host, f"{prefix}/app:v1", "-o", "json").ok().json()
    assert [d["digest"] for d in found] == [sig.digest]
    mark = dest.mark()
    again = cli(*args).ok().json()
    assert again["repositories"][0]["referrers_copied"] == [] and writes(dest.since(mark)) == []


def test_backup_to_layouts_and_restore(
    cli: Cli, distribution_server: DistributionServer, dest: CountedServer, tmp_path: Path,
) -> None:
    prefix = unique("backup")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=prefix, layers=1)
    image = make_image(seed=f"{prefix}-img", layers=2)
    push(index, distribution_server.url, f"{prefix}/web/app", "v1")
    push(image, distribution_server.url, f"{prefix}/db", "v1")
    push(image, distribution_server.url, f"{prefix}/db", "latest")
    backup = tmp_path / "backup"
    cli("sync", f"{distribution_server.host}/{prefix}", f"oci:{backup}").ok()
    assert OCILayout.open(backup / "web" / "app").resolve("v1").digest == index.digest
    assert set(OCILayout.open(backup / "db").tags()) == {"v1", "latest"}

    restored = cli("sync", f"oci:{backup}", f"{dest.host}/restored", "-o", "json").ok().json()
    assert {r["destination"].split("/restored/")[1] for r in restored["repositories"]} == {"web/app", "db"}
    skopeo = Skopeo(tmp_path / "skopeo")
    for repository, tag, digest in (("web/app", "v1", index.digest), ("db", "latest", image.digest)):
        inspected = json.loads(skopeo.run("inspect", "--raw", "--tls-verify=false",
                                          f"docker://{dest.host}/restored/{repository}:{tag}").stdout or "{}")
        assert inspected
        out = skopeo.run("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                         f"docker://{dest.host}/restored/{repository}:{tag}").stdout.strip()
        original = skopeo.run("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                              f"docker://{distribution_server.host}/{prefix}/{repository}:{tag}").stdout.strip()
        assert out == original == digest
    again = cli("sync", f"{distribution_server.host}/{prefix}", f"oci:{backup}", "-o", "json").ok().json()
    assert again["blobs_copied"] == 0 and again["tags_copied"] == 0


def test_config_with_two_jobs_and_credentials(
    cli: Cli, distribution_auth_server: DistributionServer, dockyard_auth_server: DockyardServer,
    dest: CountedServer, tmp_path: Path,
) -> None:
    user, password = TEST_USER
    prefix = unique("cfg")
    image = make_image(seed=f"{prefix}-a")
    push(image, distribution_auth_server.url, f"{prefix}/a", "v1", auth=(user, password))
    token_prefix = unique("tok")
    cli("login", dockyard_auth_server.host, "-u", user, "--password-stdin", input=password).ok()
    cli("copy", f"{distribution_auth_server.host}/{prefix}/a:v1", f"{dockyard_auth_server.host}/{token_prefix}/b:v1",
        "-u", user, "--password-stdin", input=password).ok()
    password_file = tmp_path / "password"
    password_file.write_text(password + "\n")
    config = tmp_path / "sync.toml"
    config.write_text(f"""
[defaults]
tags = "v.*"

[[credentials]]
registry = "{distribution_auth_server.host}"
username = "{user}"
password_file = "{password_file}"

[[credentials]]
registry = "{dockyard_auth_server.host}"
docker_config = "{dockyard_auth_server.host}"

[[jobs]]
source = "{distribution_auth_server.host}/{prefix}"
dest = "{dest.host}/one"

[[jobs]]
source = "{dockyard_auth_server.host}/{token_prefix}"
dest = "{dest.host}/two"
""")
    result = cli("sync", "--config", str(config), "-o", "json").ok().json()
    assert [r["job"] for r in result["repositories"]] == ["#1", "#2"]
    assert repo_tags(cli, dest.host, "one/a") == {"v1"}
    assert repo_tags(cli, dest.host, "two/b") == {"v1"}
    # Both jobs carry the same image: its blobs moved once and were mounted into the other repository.
    assert result["blobs_copied"] == len(image.all_blobs()) == result["blobs_mounted"]

    yaml_config = tmp_path / "sync.yaml"
    yaml_config.write_text(f"""
credentials:
  - registry: "{distribution_auth_server.host}"
    username: "{user}"
    password_file: "{password_file}"
  - registry: "{dockyard_auth_server.host}"
    docker_config: "{dockyard_auth_server.host}"
defaults:
  tags: "v.*"
jobs:
  - source: "{distribution_auth_server.host}/{prefix}"
    dest: "{dest.host}/one"
  - source: "{dockyard_auth_server.host}/{token_prefix}"
    dest: "{dest.host}/two"
""")
    mark = dest.mark()
    again = cli("sync", "--config", str(yaml_config), "-o", "json").ok().json()
    assert [r["job"] for r in again["repositories"]] == ["#1", "#2"]
    assert again["tags_skipped"] == 2 and writes(dest.since(mark)) == []


def test_catalog_denied_and_bad_input(cli: Cli, distribution_auth_server: DistributionServer,
                                      dockyard_server: DockyardServer, tmp_path: Path) -> None:
    assert "--watch" in cli("sync", "--help").ok().stdout
    denied = cli("sync", distribution_auth_server.host, f"oci:{tmp_path / 'x'}").failed(1)
    assert "repositories" in denied.stderr and "--config" in denied.stderr
    assert "regular expression" in cli("sync", dockyard_server.host, f"oci:{tmp_path}", "--include", "a(",
                                       ).failed(2).stderr
    assert "no repository" in cli("sync", f"{dockyard_server.host}/{unique('nothing')}", f"oci:{tmp_path}",
                                  ).failed(1).stderr
    cli("sync", dockyard_server.host).failed(2)
    assert "--watch" in cli("sync", dockyard_server.host, f"oci:{tmp_path}", "--watch", "soon").failed(2).stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[jobs]]\nsource = 'a'\n")
    assert "dest" in cli("sync", "--config", str(bad)).failed(2).stderr


def test_one_failing_repository_does_not_stop_the_others(cli: Cli, dest: CountedServer, tmp_path: Path) -> None:
    from tests.support.images import write_to_layout

    tree = tmp_path / "tree"
    for name in ("good-a", "broken", "good-b"):
        write_to_layout(make_image(seed=f"{tmp_path}-{name}", layers=1), OCILayout(tree / name).create(), "v1")
    layout = OCILayout(tree / "broken")
    layer = next(d for d in layout.iter_blobs() if layout.blob_size(d) > 100)
    path = layout.blob_path(layer)
    path.write_bytes(path.read_bytes()[::-1])  # the repository's content is corrupt (same size, other bytes)
    result = cli("sync", f"oci:{tree}", f"{dest.host}/copied", "-o", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    errors = {r["source"].rsplit("/", 1)[-1]: r["error"] for r in report["repositories"]}
    assert errors["good-a"] is None and errors["good-b"] is None and "digest" in errors["broken"]
    assert repo_tags(cli, dest.host, "copied/good-b") == {"v1"}
    assert report["failed"] == 1


def _dockyard(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    program = shutil.which("dockyard")
    assert program
    return subprocess.Popen([program, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def _signal_when(proc: subprocess.Popen[str], sig: int, ready: Callable[[], bool], wait: float = 30) -> None:
    """Send ``sig`` to ``proc`` once ``ready()`` (polled, for up to 60 s) and wait for it to end: killed, and
    ``subprocess.TimeoutExpired`` raised, when it is still running ``wait`` seconds after the signal."""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ready():
            time.sleep(0.005)
        proc.send_signal(sig)
        proc.wait(timeout=wait)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_sync_resumes_without_recopying(
    cli: Cli, cli_env: dict[str, str], dockyard_server: DockyardServer, dest: CountedServer,
) -> None:
    prefix = unique("big")
    names = [f"r{i}" for i in range(4)]
    for name in names:
        push(make_image(layers=2, layer_size=3_000_000, seed=f"{prefix}-{name}"), dockyard_server.url,
             f"{prefix}/{name}", "v1")
    proc = _dockyard("sync", f"{dockyard_server.host}/{prefix}", f"{dest.host}/{prefix}", "--jobs", "1",
                     "--concurrency", "1", env=cli_env)
    # Killed once the first repository is complete (its tag pushed) and before the last one is.
    _signal_when(proc, signal.SIGKILL, lambda: any(
        e["method"] == "PUT" and e["path"].endswith("/manifests/v1") for e in dest.requests()))
    done = {e["path"].split("/")[3] for e in dest.requests()
            if e["method"] == "PUT" and e["path"].endswith("/manifests/v1")}
    assert done and len(done) < len(names), "the sync was not interrupted mid-run"

    result = cli("sync", f"{dockyard_server.host}/{prefix}", f"{dest.host}/{prefix}", "-o", "json").ok().json()
    by_repo = {r["source"].rsplit("/", 1)[-1]: r for r in result["repositories"]}
    for name in names:
        assert repo_tags(cli, dest.host, f"{prefix}/{name}") == {"v1"}
        if name in done:  # finished before the kill: nothing of it moves again
            assert by_repo[name]["tags_skipped"] == ["v1"] and by_repo[name]["blobs_copied"] == 0
    assert sum(r["blobs_copied"] for r in by_repo.values()) < 2 * len(names) + len(names)


def test_watch_picks_up_a_new_tag(
    cli_env: dict[str, str], dockyard_server: DockyardServer, dest: CountedServer,
) -> None:
    prefix = unique("watch")
    push(make_image(seed=f"{prefix}-1"), dockyard_server.url, f"{prefix}/app", "v1")
    proc = _dockyard("sync", f"{dockyard_server.host}/{prefix}", f"{dest.host}/{prefix}", "--watch", "1s",
                     "-o", "json", env=cli_env)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["repositories"][0]["tags_copied"] == ["v1"]
        push(make_image(seed=f"{prefix}-2"), dockyard_server.url, f"{prefix}/app", "v2")
        for _ in range(10):  # bounded: a pass a second
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            if json.loads(line)["repositories"][0]["tags_copied"] == ["v2"]:
                break
        else:
            raise AssertionError("the new tag was not synced by later passes")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130


def _upload_sessions(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The upload sessions a registry opened (``POST`` answered 202), and the requests that ended one (committed
    or deleted)."""
    opened = [e for e in entries if e["method"] == "POST" and "/blobs/uploads" in e["path"] and e["status"] == 202]
    ended = [e for e in entries if e["method"] in ("PUT", "DELETE") and "/blobs/uploads/" in e["path"]
             and e["status"] in (201, 202, 204)]
    return opened, ended


def _committed(entries: list[dict[str, Any]], digest: str) -> bool:
    """Whether an upload of ``digest`` was committed (``PUT ?digest=`` answered 201)."""
    hex_digest = digest.partition(":")[2]  # the hex, however the query is encoded
    return any(e["method"] == "PUT" and e["status"] == 201 and hex_digest in e.get("query", "") for e in entries)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_interrupt_deletes_upload_sessions(
    cli_env: dict[str, str], dockyard_server: DockyardServer, dest: CountedServer,
) -> None:
    from tests.support.proxy import FaultProxy

    prefix = unique("ctrlc")
    image = make_image(layers=1, layer_size=8_000_000, seed=prefix)
    config, layer = (blob.digest for blob in image.blobs)
    push(image, dockyard_server.url, f"{prefix}/app", "v1")
    at_signal: list[dict[str, Any]] = []

    def layer_on_its_way() -> bool:
        # The config blob is stored and the layer's download has begun, so the sync knows the layer's upload
        # session (it opens it before it reads the layer): every session it opened is one it can delete.
        at_signal[:] = dest.requests()
        return _committed(at_signal, config) and bool(source.requests("GET", f"/blobs/{layer}"))

    with FaultProxy(dockyard_server.url) as source:
        # After 1 MB the layer's download trickles (7 MB in 64 KiB pieces 50 ms apart: over 5 s): its upload is
        # still running when the interrupt comes, however fast the destination writes.
        source.inject_trickle(1_000_000, path_contains=f"/blobs/{layer}", times=None)
        proc = _dockyard("sync", f"{source.host}/{prefix}", f"{dest.host}/{prefix}", env=cli_env)
        # Interrupted while the layer's bytes are on their way.
        _signal_when(proc, signal.SIGINT, layer_on_its_way)
    assert not _committed(at_signal, layer), "the layer's upload ended before the interrupt was sent"
    assert proc.returncode == 130
    assert _one_line(proc.stderr.read() if proc.stderr else "") == "dockyard: interrupted"
    entries = dest.requests()
    opened, ended = _upload_sessions(entries)
    assert len(opened) == len(image.blobs) == len(ended), f"upload sessions left behind: {entries}"
    # The running upload was cut at once, not left to finish: its session was deleted, never committed.
    assert not _committed(entries, layer), entries
    assert any(e["method"] == "DELETE" and "/blobs/uploads/" in e["path"] for e in entries), entries


@pytest.mark.parametrize(("sig", "code", "message"), [(signal.SIGINT, 130, "dockyard: interrupted"),
                                                      (signal.SIGTERM, 143, "dockyard: terminated")])
def test_interrupt_abandons_a_stalled_download(
    cli: Cli, cli_env: dict[str, str], dockyard_server: DockyardServer, dest: CountedServer, sig: int, code: int,
    message: str,
) -> None:
    from tests.support.proxy import FaultProxy

    prefix = unique("stall")
    image = make_image(layers=1, layer_size=3_000_000, seed=prefix)
    config, layer = (blob.digest for blob in image.blobs)
    push(image, dockyard_server.url, f"{prefix}/app", "v1")
    with FaultProxy(dockyard_server.url) as source:
        # The source sends 1 MB of the layer and then nothing, its connection open: a read that never returns.
        stall = source.inject_stall(1_000_000, path_contains=f"/blobs/{layer}", times=None)
        proc = _dockyard("sync", f"{source.host}/{prefix}", f"{dest.host}/{prefix}", env=cli_env)
        # Signalled once the config blob is stored, while the layer's download hangs and its upload session is
        # open; it must end within 10 s (the read timeout is 60 s).
        _signal_when(proc, sig, lambda: stall.stalled.is_set() and _committed(dest.requests(), config), wait=10)
    assert proc.returncode == code
    assert _one_line(proc.stderr.read() if proc.stderr else "") == message
    entries = dest.requests()
    opened, ended = _upload_sessions(entries)
    assert len(opened) == len(image.blobs) == len(ended), f"upload sessions left behind: {entries}"
    assert not _committed(entries, layer)

    # A second run resumes: the config blob is there; only the layer moves.
    again = cli("sync", f"{dockyard_server.host}/{prefix}", f"{dest.host}/{prefix}", "-o", "json").ok().json()
    assert again["tags_copied"] == 1 and again["blobs_copied"] == 1 and again["blobs_skipped"] == 1
    assert repo_tags(cli, dest.host, f"{prefix}/app") == {"v1"}


def test_interrupt_is_bounded_when_the_destination_hangs(
    cli_env: dict[str, str], dockyard_server: DockyardServer, dest: CountedServer,
) -> None:
    from tests.support.proxy import FaultProxy

    prefix = unique("hang")
    image = make_image(layers=1, layer_size=3_000_000, seed=prefix)
    layer = image.blobs[-1].digest
    push(image, dockyard_server.url, f"{prefix}/app", "v1")
    with FaultProxy(dockyard_server.url) as source, FaultProxy(dest.url) as target:
        stall = source.inject_stall(1_000_000, path_contains=f"/blobs/{layer}", times=None)
        # The destination answers no request from the interrupt on: the deletes of the sessions hang.
        hang = target.inject_stall(None, method="DELETE", times=None)
        proc = _dockyard("sync", f"{source.host}/{prefix}", f"{target.host}/{prefix}", env=cli_env)
        _signal_when(proc, signal.SIGINT, lambda: stall.stalled.is_set() and len(
            _upload_sessions(dest.requests())[0]) == 2, wait=10)
        assert hang.stalled.wait(5)  # the sync did try to delete its session
    assert proc.returncode == 130
    assert _one_line(proc.stderr.read() if proc.stderr else "") == "dockyard: interrupted"


def test_a_dropped_connection_is_retried_once(cli: Cli, dockyard_server: DockyardServer, dest: CountedServer) -> None:
    from tests.support.proxy import FaultProxy

    prefix = unique("drop")
    push(make_image(seed=prefix, layers=2), dockyard_server.url, f"{prefix}/app", "v1")
    with FaultProxy(dest.url) as proxy:
        # The tag's manifest PUT goes through to the registry, then the connection drops before the answer.
        fault = proxy.inject_drop(0, method="PUT", path_contains="/manifests/v1", times=1)
        result = cli("sync", f"{dockyard_server.host}/{prefix}", f"{proxy.host}/{prefix}", "-o", "json").ok().json()
    assert fault.hits == 1
    assert result["failed"] == 0 and result["tags_copied"] == 1
    assert repo_tags(cli, dest.host, f"{prefix}/app") == {"v1"}


def test_include_takes_whole_paths_and_exclude_wins(
    cli: Cli, distribution_server: DistributionServer, dest: CountedServer,
) -> None:
    prefix = unique("incl")
    for name in ("app/web", "app/web-test", "myapp", "app"):
        push(make_image(seed=f"{prefix}-{name}"), distribution_server.url, f"{prefix}/{name}", "v1")
    result = cli("sync", f"{distribution_server.host}/{prefix}", f"{dest.host}/{prefix}", "--include", "app/.*",
                 "--exclude", ".*-test", "-o", "json").ok().json()
    # app/.* matches app/web and app/web-test as a whole, not myapp or app; --exclude then drops app/web-test.
    assert [r["source"].split(f"/{prefix}/")[1] for r in result["repositories"]] == ["app/web"]
    assert [r["name"] for r in cli("repo", "list", "-r", dest.host, "-o", "json").ok().json()] == [
        f"{prefix}/app/web"]


def test_jobs_bounds_the_repositories_in_flight(
    cli_env: dict[str, str], dockyard_server: DockyardServer, dest: CountedServer,
) -> None:
    """``--jobs 2`` with four repositories whose layers stall at the source: two repositories transfer at once,
    and no third starts while they run."""
    from tests.support.proxy import FaultProxy

    prefix = unique("jobs")
    layers = {}
    for name in ("a", "b", "c", "d"):
        image = make_image(layers=1, layer_size=200_000, seed=f"{prefix}-{name}")
        push(image, dockyard_server.url, f"{prefix}/{name}", "v1")
        layers[name] = image.blobs[-1].digest
    with FaultProxy(dockyard_server.url) as source:
        stalls = {name: source.inject_stall(1000, path_contains=f"/blobs/{digest}") for name, digest in layers.items()}
        proc = _dockyard("sync", f"{source.host}/{prefix}", f"{dest.host}/{prefix}", "--jobs", "2", env=cli_env)

        def stalled() -> list[str]:
            return [name for name, fault in stalls.items() if fault.stalled.is_set()]

        def two_stalled_and_settled() -> bool:
            if len(stalled()) < 2:
                return False
            time.sleep(1)  # a third repository, were it allowed, would have reached its layer by now
            return True

        _signal_when(proc, signal.SIGINT, two_stalled_and_settled, wait=10)
        in_flight = stalled()
        started = {name for name in layers if source.requests("GET", f"/v2/{prefix}/{name}/")}
    assert proc.returncode == 130
    assert len(in_flight) == 2, in_flight
    assert started == set(in_flight), started  # the other two were never started


def test_whole_registry_through_a_429_and_503_answering_proxy(
    cli: Cli, tmp_path: Path, dest: CountedServer,
) -> None:
    """SOURCE without a prefix (every repository of the registry), read through a proxy answering 429 (with
    Retry-After) and 503: the sync waits and retries, and reports every repository copied."""
    from tests.support.proxy import FaultProxy

    images = {name: make_image(seed=f"{tmp_path}-{name}", layers=1) for name in ("one", "team/two")}
    with DockyardServer(tmp_path / "source") as origin, FaultProxy(origin.url) as source:
        for name, image in images.items():
            push(image, origin.url, name, "v1")
        throttled = source.inject_status(429, headers={"Retry-After": "1"}, path_contains="/one/manifests/")
        failing = source.inject_status(503, path_contains="/blobs/", method="GET", times=2)
        result = cli("sync", source.host, f"{dest.host}/all", "-o", "json").ok().json()
        assert throttled.hits == 1 and failing.hits == 2
    assert sorted(r["destination"].split("/all/")[1] for r in result["repositories"]) == ["one", "team/two"]
    assert result["failed"] == 0 and result["tags_copied"] == 2
    for name, image in images.items():
        assert repo_tags(cli, dest.host, f"all/{name}") == {"v1"}
        assert repo_digests(cli, dest.host, f"all/{name}") == {image.digest}


def test_into_docker_registry_with_htpasswd_referrers_and_mounts_then_nothing_moves(
    cli: Cli, dockyard_server: DockyardServer, distribution_auth_server: DistributionServer,
) -> None:
    """Debian's docker-registry behind htpasswd as the destination (no referrers API: the tag-schema index is
    kept there): a multi-arch index with a signature, blobs shared by two repositories mounted; a second run
    asks the destination nothing that writes (counted from its own log)."""
    user, password = TEST_USER
    prefix = unique("todist")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=prefix, layers=1)
    push(index, dockyard_server.url, f"{prefix}/app", "v1")
    sig = make_artifact({"sig": prefix.encode()}, artifact_type="application/vnd.example.sig", subject=index)
    push(sig, dockyard_server.url, f"{prefix}/app")
    base = make_image(seed=f"{prefix}-base", layers=2)
    push(base, dockyard_server.url, f"{prefix}/app", "base")
    push(base, dockyard_server.url, f"{prefix}/db", "v1")
    cli("login", distribution_auth_server.host, "-u", user, "--password-stdin", input=password).ok()
    args = ["sync", f"{dockyard_server.host}/{prefix}", f"{distribution_auth_server.host}/{prefix}", "--referrers",
            "-o", "json"]
    first = cli(*args).ok().json()
    assert first["failed"] == 0 and first["tags_copied"] == 3
    assert first["blobs_mounted"] == len(base.all_blobs())
    assert {d for r in first["repositories"] for d in r["referrers_copied"]} == {sig.digest}
    assert repo_tags(cli, distribution_auth_server.host, f"{prefix}/db") == {"v1"}
    found = cli("manifest", "referrers", "-r", distribution_auth_server.host, f"{prefix}/app:v1", "-o", "json"
                ).ok().json()
    assert [d["digest"] for d in found] == [sig.digest]

    mark = len(logged_requests(distribution_auth_server))
    second = cli(*args).ok().json()
    assert (second["tags_copied"], second["tags_skipped"], second["blobs_copied"], second["blobs_mounted"]) == (
        0, 3, 0, 0)
    assert all(r["referrers_copied"] == [] for r in second["repositories"])
    moved = logged_requests(distribution_auth_server)[mark:]
    assert moved and [r for r in moved if r[0] in WRITE_METHODS] == []


def test_referrers_round_trip_through_layouts(
    cli: Cli, dockyard_server: DockyardServer, dest: CountedServer, tmp_path: Path,
) -> None:
    """The air-gapped transfer of docs/mirror.md: registry → oci:DIR → registry with ``--platform`` and
    ``--referrers``; the signature of the (rewritten) index's platform manifest arrives, and both legs are
    idempotent."""
    prefix = unique("gap")
    index = make_multiarch_index(("linux/amd64", "linux/arm64"), seed=prefix, layers=1)
    push(index, dockyard_server.url, f"{prefix}/base", "v1")
    amd = next(c for c in index.children if str(c.platform) == "linux/amd64")
    sig = make_artifact({"sig": prefix.encode()}, artifact_type="application/vnd.example.sig", subject=amd)
    push(sig, dockyard_server.url, f"{prefix}/base")
    disk = tmp_path / "disk"
    out = ["sync", f"{dockyard_server.host}/{prefix}", f"oci:{disk}", "--platform", "linux/amd64", "--referrers",
           "-o", "json"]
    there = cli(*out).ok().json()
    assert there["repositories"][0]["referrers_copied"] == [sig.digest]
    # skopeo reads the layout: its v1 is the index rewritten to list linux/amd64 only.
    raw = json.loads(Skopeo(tmp_path / "skopeo").run("inspect", "--raw", f"oci:{disk}/base:v1").stdout)
    assert [m["digest"] for m in raw["manifests"]] == [amd.digest]
    back = ["sync", f"oci:{disk}", f"{dest.host}/{prefix}", "--referrers", "-o", "json"]
    arrived = cli(*back).ok().json()
    assert arrived["failed"] == 0 and arrived["repositories"][0]["referrers_copied"] == [sig.digest]
    found = cli("manifest", "referrers", "-r", dest.host, f"{prefix}/base@{amd.digest}", "-o", "json").ok().json()
    assert [d["digest"] for d in found] == [sig.digest]
    assert cli(*out).ok().json()["blobs_copied"] == 0
    mark = dest.mark()
    again = cli(*back).ok().json()
    assert again["tags_skipped"] == 1 and again["repositories"][0]["referrers_copied"] == []
    assert writes(dest.since(mark)) == []


def test_a_prefix_that_is_itself_a_repository_comes_along_with_its_children(
    cli: Cli, distribution_server: DistributionServer, dest: CountedServer, tmp_path: Path,
) -> None:
    prefix = unique("self")
    top, child = make_image(seed=f"{prefix}-top"), make_image(seed=f"{prefix}-child")
    push(top, distribution_server.url, f"{prefix}/app", "v1")
    push(child, distribution_server.url, f"{prefix}/app/web", "v1")
    push(make_image(seed=f"{prefix}-near"), distribution_server.url, f"{prefix}/appendix", "v1")  # not under app/
    result = cli("sync", f"{distribution_server.host}/{prefix}/app", f"{dest.host}/copy-{prefix}", "-o", "json"
                 ).ok().json()
    assert sorted(r["destination"] for r in result["repositories"]) == [
        f"{dest.host}/copy-{prefix}", f"{dest.host}/copy-{prefix}/web"]
    assert repo_digests(cli, dest.host, f"copy-{prefix}") == {top.digest}
    assert repo_digests(cli, dest.host, f"copy-{prefix}/web") == {child.digest}
    tree = tmp_path / "tree"
    cli("sync", f"{dest.host}/copy-{prefix}", f"oci:{tree}").ok()
    assert OCILayout.open(tree).resolve("v1").digest == top.digest
    assert OCILayout.open(tree / "web").resolve("v1").digest == child.digest
    back = cli("sync", f"oci:{tree}", f"{dest.host}/back-{prefix}", "-o", "json").ok().json()
    assert back["failed"] == 0 and back["tags_copied"] == 2
    assert repo_digests(cli, dest.host, f"back-{prefix}/web") == {child.digest}
