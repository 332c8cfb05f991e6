"""Health checks, Prometheus metrics and the request log of ``dockyard serve``.

Against real ``dockyard serve`` processes: after a push and a pull, ``/metrics`` counts the manifest and blob
requests by route template and status, the bytes received and sent, the blobs and bytes stored and the open
upload sessions; ``--workers 2`` sums every worker in each scrape; ``--metrics-auth`` and ``--no-metrics``;
``/readyz`` reports a vanished database; every request writes one log line (text or JSON) with its fields.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dockyard.oci.digest import compute_digest
from tests.support.images import make_image, push
from tests.support.inprocess import InProcessServer
from tests.support.servers import DockyardServer, free_port, run_gc, write_htpasswd

MANIFEST = "/v2/{name:path}/manifests/{reference}"
BLOB = "/v2/{name:path}/blobs/{digest}"
UPLOAD = "/v2/{name:path}/blobs/uploads/{upload_id}"
UPLOAD_START = "/v2/{name:path}/blobs/uploads/"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, auth: tuple[str, str] | None = None) -> Samples:
    """Every ``dockyard_*`` sample of one scrape, keyed by (sample name, labels)."""
    response = httpx.get(f"{url}/metrics", auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("dockyard_"):
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, method: str, status: int) -> float:
    return value(samples, "dockyard_http_requests_total", route=route, method=method, status=str(status))


def wait_for(predicate: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    with DockyardServer(tmp_path_factory.mktemp("observed")) as srv:
        yield srv


def test_metrics_after_a_push_and_a_pull(server: DockyardServer) -> None:
    image = make_image(layers=2, layer_size=40_000)
    blobs = image.all_blobs()
    before = scrape(server.url)
    push(image, server.url, "metrics/app", "v1")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        pulled = http.get("/v2/metrics/app/manifests/v1", headers={"Accept": image.media_type})
        assert pulled.status_code == 200 and pulled.content == image.body
        for blob in blobs:
            got = http.get(f"/v2/metrics/app/blobs/{blob.digest}")
            assert got.status_code == 200 and got.content == blob.data
    after = scrape(server.url)

    def grew(route: str, method: str, status: int) -> float:
        return requests(after, route, method, status) - requests(before, route, method, status)

    assert grew(MANIFEST, "PUT", 201) == 1
    assert grew(MANIFEST, "GET", 200) == 1
    assert grew(BLOB, "HEAD", 404) == len(blobs)
    assert grew(BLOB, "GET", 200) == len(blobs)
    assert grew(UPLOAD_START, "POST", 202) == len(blobs)
    assert grew(UPLOAD, "PUT", 201) == len(blobs)
    # Route templates only: no raw path (repository name or digest) ever becomes a label.
    labels = {v for (_, pairs) in after for (_, v) in pairs}
    assert not any("metrics/app" in label or "sha256:" in label for label in labels)

    def bytes_grew(name: str, route: str) -> float:
        return value(after, name, route=route) - value(before, name, route=route)

    pushed = sum(b.size for b in blobs)
    assert bytes_grew("dockyard_http_received_bytes_total", UPLOAD) >= pushed
    assert bytes_grew("dockyard_http_received_bytes_total", MANIFEST) >= image.size
    assert bytes_grew("dockyard_http_sent_bytes_total", BLOB) >= pushed
    assert bytes_grew("dockyard_http_sent_bytes_total", MANIFEST) >= image.size
    assert value(after, "dockyard_http_request_duration_seconds_count", route=MANIFEST, method="PUT") >= 1
    assert value(after, "dockyard_blobs_stored") - value(before, "dockyard_blobs_stored") == len(blobs)
    assert value(after, "dockyard_blob_bytes_stored") - value(before, "dockyard_blob_bytes_stored") == pushed


def test_blob_gauges_match_the_store_and_gc_runs_are_counted(tmp_path: Path) -> None:
    """On a fresh registry the stored gauges equal exactly what was pushed (a blob in two repositories once);
    the server's upload sweeps and a separate ``dockyard gc`` run show up as gc metrics."""
    with DockyardServer(tmp_path / "srv", "--upload-ttl", "0.5") as srv:
        image = make_image(layers=3, layer_size=5000)
        push(image, srv.url, "one/app", "v1")
        push(image, srv.url, "two/app", "v1")
        samples = scrape(srv.url)
        assert value(samples, "dockyard_blobs_stored") == len(image.all_blobs())
        assert value(samples, "dockyard_blob_bytes_stored") == sum(b.size for b in image.all_blobs())
        assert ("dockyard_gc_command_runs_total", frozenset()) not in samples

        abandoned = httpx.post(f"{srv.url}/v2/one/app/blobs/uploads/", timeout=10)
        assert abandoned.status_code == 202
        wait_for(lambda: value(scrape(srv.url), "dockyard_gc_removed_total", what="uploads") >= 1,
                 "the sweep never removed the abandoned upload")
        samples = scrape(srv.url)
        assert value(samples, "dockyard_gc_runs_total", kind="upload_sweep") >= 1
        assert value(samples, "dockyard_gc_last_run_timestamp_seconds", kind="upload_sweep") > time.time() - 60
        assert value(samples, "dockyard_upload_sessions_open") == 0

        run_gc(srv.data_dir, "--min-age", "3600")
        run_gc(srv.data_dir, "--min-age", "3600")
        samples = scrape(srv.url)
    assert value(samples, "dockyard_gc_command_runs_total") == 2
    assert value(samples, "dockyard_gc_command_last_run_timestamp_seconds") > time.time() - 60
    assert value(samples, "dockyard_gc_command_last_run_removed", what="blobs") == 0


def test_open_uploads_gauge_follows_a_chunked_upload(server: DockyardServer) -> None:
    data = os.urandom(3000)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        base = value(scrape(server.url), "dockyard_upload_sessions_open")
        start = http.post("/v2/metrics/chunked/blobs/uploads/")
        assert start.status_code == 202
        location = start.headers["Location"]
        chunk = http.patch(location, content=data[:1000], headers={
            "Content-Type": "application/octet-stream", "Content-Range": "0-999"})
        assert chunk.status_code == 202, chunk.text
        assert value(scrape(server.url), "dockyard_upload_sessions_open") == base + 1
        done = http.put(chunk.headers["Location"], params={"digest": compute_digest(data)}, content=data[1000:],
                        headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
    assert value(scrape(server.url), "dockyard_upload_sessions_open") == base


def test_text_request_log_line(server: DockyardServer) -> None:
    response = httpx.get(f"{server.url}/v2/logged/repo/tags/list", timeout=10)
    assert response.status_code == 404
    pattern = re.compile(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 - \"GET /v2/\{name:path\}/tags/list\" "
        r"repo=logged/repo 404 in=0 out=(\d+) [\d.]+ms$", re.M)
    wait_for(lambda: pattern.search(server.log()), f"no request log line in:\n{server.log()}")
    match = pattern.search(server.log())
    assert match and int(match.group(1)) == len(response.content)


def test_health_endpoints_and_readiness_when_metadata_vanishes(tmp_path: Path) -> None:
    with InProcessServer(tmp_path / "data") as app, app.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").status_code == 200
        (tmp_path / "data" / "metadata.db").unlink()
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert [e["detail"].keys() for e in ready.json()["errors"]] == [{"metadata"}]
        assert "metadata.db" in ready.text
        assert http.get("/healthz").status_code == 200


def test_readiness_names_a_missing_blob_folder(tmp_path: Path) -> None:
    with InProcessServer(tmp_path / "data") as app, app.client() as http:
        (tmp_path / "data" / "blobs").rename(tmp_path / "data" / "moved")
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert [e["detail"].keys() for e in ready.json()["errors"]] == [{"blobs"}]


def test_no_metrics_is_404(tmp_path: Path) -> None:
    with InProcessServer(tmp_path / "data", metrics=False) as app, app.client() as http:
        response = http.get("/metrics")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NOT_FOUND"
        assert http.get("/healthz").status_code == 200


def test_metrics_auth_and_public_health_with_auth_on(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "s3cret"})
    with DockyardServer(tmp_path / "srv", "--htpasswd", str(htpasswd), "--metrics-auth") as srv:
        assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{srv.url}/readyz", timeout=10).status_code == 200
        anonymous = httpx.get(f"{srv.url}/metrics", timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert httpx.get(f"{srv.url}/metrics", auth=("alice", "wrong"), timeout=10).status_code == 401
        samples = scrape(srv.url, auth=("alice", "s3cret"))
        assert requests(samples, "/metrics", "GET", 401) == 2
        # The request log names the authenticated user.
        assert httpx.get(f"{srv.url}/v2/", auth=("alice", "s3cret"), timeout=10).status_code == 200
        wait_for(lambda: re.search(r' alice "GET /v2/" repo=- 200 ', srv.log()), srv.log())
        # ... and who obtained a token.
        token = httpx.post(f"{srv.url}/oauth2/token", timeout=10, data={
            "grant_type": "password", "username": "alice", "password": "s3cret", "service": srv.host,
            "scope": "repository:a/b:pull"})
        assert token.status_code == 200, token.text
        wait_for(lambda: re.search(r' alice "POST /oauth2/token" repo=- 200 ', srv.log()), srv.log())


def test_metrics_without_auth_flag_are_public_with_auth_on_and_log_level_warning_is_quiet(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "s3cret"})
    with DockyardServer(tmp_path / "srv", "--htpasswd", str(htpasswd), "--log-level", "warning") as srv:
        assert httpx.get(f"{srv.url}/metrics", timeout=10).status_code == 200
    # Stopping drains the log queue: with --log-level warning no request line was written.
    assert "serving http://" in srv.log() and '"GET /metrics"' not in srv.log()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--log-format", "xml"], "--log-format must be one of text, json"),
        (["--log-level", "loud"], "--log-level must be one of debug, info, warning, error"),
        (["--metrics-auth"], "--metrics-auth needs --htpasswd"),
    ],
)
def test_bad_observability_flags_are_one_line_errors(tmp_path: Path, flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--port", "0", "--data-dir", str(tmp_path / "d"), *flags],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def _multiproc_dirs(pid: int) -> set[str]:
    """The PROMETHEUS_MULTIPROC_DIR of the worker processes of server ``pid``."""
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        found.update(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
    return found


def test_two_workers_one_scrape_sees_both_and_json_log(tmp_path: Path) -> None:
    requests_made = 40
    with DockyardServer(tmp_path / "srv", "--workers", "2", "--log-format", "json") as srv:
        assert srv.proc is not None
        (shared,) = _multiproc_dirs(srv.proc.pid)

        def one(i: int) -> int:
            with httpx.Client(timeout=30) as http:  # a fresh connection each: the kernel spreads them
                return http.get(f"{srv.url}/v2/spread/r{i}/tags/list").status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(one, range(requests_made))) == {404}
        # Both workers answered some of them (one counter file per process) ...
        assert len(list(Path(shared).glob("counter_*.db"))) == 2
        # ... and every scrape, whichever worker answers it, counts all of them.
        for _ in range(4):
            with httpx.Client(timeout=30) as http:
                text = http.get(f"{srv.url}/metrics").text
            samples = {(s.name, frozenset(s.labels.items())): s.value
                       for f in text_string_to_metric_families(text) for s in f.samples}
            assert requests(samples, "/v2/{name:path}/tags/list", "GET", 404) == requests_made
        wait_for(lambda: srv.log().count('"route": "/v2/{name:path}/tags/list"') >= requests_made, srv.log())
    assert not Path(shared).exists()
    lines = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    logged = [entry for entry in lines if entry.get("route") == "/v2/{name:path}/tags/list"]
    assert len(logged) == requests_made
    entry = logged[0]
    assert entry.keys() >= {"time", "client", "user", "method", "route", "repository", "status", "bytes_in",
                            "bytes_out", "duration_ms"}
    assert entry["client"] == "127.0.0.1" and entry["method"] == "GET" and entry["status"] == 404
    assert entry["repository"].startswith("spread/r") and entry["bytes_in"] == 0 and entry["bytes_out"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_a_stalled_stdout_does_not_stall_the_server(tmp_path: Path) -> None:
    """Standard output is a pipe nobody reads: the log lines outgrow its buffer, requests are still answered."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get(f"{url}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            # ~250 bytes of JSON per line: 1500 lines are several times a 64 KiB pipe buffer.
            long_name = "stall/" + "x" * 100
            for _ in range(1500):
                assert http.get(f"{url}/v2/{long_name}/tags/list").status_code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # the reader comes back: what is queued drains, and the server exits


def test_one_process_ignores_a_multiprocess_dir_in_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``PROMETHEUS_MULTIPROC_DIR`` left in the caller's environment does not receive a lone server's metrics."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(foreign))
    with DockyardServer(tmp_path / "srv") as srv:
        assert httpx.get(f"{srv.url}/v2/", timeout=10).status_code == 200
        assert requests(scrape(srv.url), "/v2/", "GET", 200) >= 1
    assert list(foreign.iterdir()) == []
