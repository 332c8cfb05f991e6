"""The pull-through cache (``dockyard serve --cache-rule``) against real upstreams on loopback.

Upstreams: Debian's docker-registry (with and without htpasswd), a second ``dockyard serve`` with token auth, and a
fault proxy answering 429. Clients: skopeo, dockyard's CLI, Microsoft's SDK, podman and plain HTTP. Upstream
requests are counted from the upstream's own access log.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from dockyard.oci import compute_digest
from tests.conftest import TEST_USER, unique
from tests.support.access_logs import count, logged_requests
from tests.support.hostile_registry import HostileRegistry, Reply
from tests.support.images import Content, make_image, make_multiarch_index, push
from tests.support.peers import require_module, require_program
from tests.support.proxy import FaultProxy
from tests.support.servers import DistributionServer, DockyardServer, subprocess_env
from tests.support.skopeo import Skopeo

MiB = 1024 * 1024
USER, PASSWORD = TEST_USER


def cache_server(workdir: Path, *rules: str, workers: int = 1) -> DockyardServer:
    flags: list[str] = ["--workers", str(workers)]
    for rule in rules:
        flags += ["--cache-rule", rule]
    return DockyardServer(workdir, *flags)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributionServer]:
    with DistributionServer(tmp_path_factory.mktemp("cache-upstream")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, upstream: DistributionServer) -> Iterator[DockyardServer]:
    """A cache of the whole upstream under ``mirror/``, with two worker processes sharing one database."""
    with cache_server(tmp_path_factory.mktemp("cache"), f"mirror/*=http://{upstream.host}/*", workers=2) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo")


def pull_with_skopeo(skopeo: Skopeo, server: DockyardServer, reference: str, dest: Path, *extra: str) -> None:
    skopeo.copy(f"docker://{server.host}/{reference}", f"oci:{dest}", *extra)


def layout_blobs(dest: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (dest / "blobs" / "sha256").iterdir()}


def test_cold_pull_stores_and_serves_then_warm_pull_asks_upstream_nothing(
    upstream: DistributionServer, cache: DockyardServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = unique("cold")
    image = make_image(seed=repo, layers=3, layer_size=256 * 1024)
    push(image, upstream.url, repo, "v1")
    pull_with_skopeo(skopeo, cache, f"mirror/{repo}:v1", tmp_path / "one")
    assert {b.digest for b in image.blobs} <= layout_blobs(tmp_path / "one")
    before = len(logged_requests(upstream, f"/v2/{repo}/"))
    pull_with_skopeo(skopeo, cache, f"mirror/{repo}@{image.digest}", tmp_path / "two")
    assert len(logged_requests(upstream, f"/v2/{repo}/")) == before  # digests never go upstream again
    catalog = httpx.get(f"{cache.url}/v2/_catalog").json()["repositories"]
    assert f"mirror/{repo}" in catalog
    tags = httpx.get(f"{cache.url}/v2/mirror/{repo}/tags/list").json()["tags"]
    assert tags == ["v1"]


def test_concurrent_cold_pulls_make_one_upstream_fetch_per_blob(
    upstream: DistributionServer, cache: DockyardServer, tmp_path: Path
) -> None:
    """12 clients pull the same image at once through two worker processes: each blob and the tag's manifest
    come from upstream once."""
    repo = unique("flock")
    image = make_image(seed=repo, layers=3, layer_size=2 * MiB)
    push(image, upstream.url, repo, "v1")
    clients = 12

    def pull(i: int) -> set[str]:
        with httpx.Client(base_url=f"{cache.url}/v2/mirror/{repo}", timeout=60) as http:
            manifest = http.get("/manifests/v1", headers={"Accept": image.media_type})
            assert manifest.status_code == 200, manifest.text
            got = set()
            for desc in [manifest.json()["config"], *manifest.json()["layers"]]:
                blob = http.get(f"/blobs/{desc['digest']}")
                assert blob.status_code == 200, blob.text
                got.add(compute_digest(blob.content))
            return got

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(pull, range(clients)))
    assert all(r == {b.digest for b in image.blobs} for r in results)
    seen = logged_requests(upstream, f"/v2/{repo}/")
    for blob in image.blobs:
        assert count(seen, "GET", f"/blobs/{blob.digest}") == 1, seen
    assert count(seen, "GET", "/manifests/v1") == 1, seen


def test_index_pull_fetches_only_the_platform_pulled(
    upstream: DistributionServer, cache: DockyardServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = unique("multi")
    index = make_multiarch_index(("linux/amd64", "linux/arm64", "linux/s390x"), seed=repo, layer_size=64 * 1024)
    push(index, upstream.url, repo, "v1")
    pull_with_skopeo(skopeo, cache, f"mirror/{repo}:v1", tmp_path / "arm", "--override-arch", "arm64")
    arm = next(c for c in index.children if c.platform and c.platform.architecture == "arm64")
    seen = logged_requests(upstream, f"/v2/{repo}/")
    fetched = {p.rsplit("/", 1)[1] for m, p, _ in seen if m == "GET" and "/blobs/" in p}
    assert fetched == {b.digest for b in arm.blobs}
    fetched_manifests = {p.rsplit("/", 1)[1] for m, p, _ in seen if m == "GET" and "/manifests/" in p}
    assert fetched_manifests == {"v1", arm.digest}


def test_push_and_delete_into_a_cached_repository_are_refused(
    upstream: DistributionServer, cache: DockyardServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = f"mirror/{unique('nopush')}"
    start = httpx.post(f"{cache.url}/v2/{repo}/blobs/uploads/")
    assert start.status_code == 403
    error = start.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert f"mirror/*=http://{upstream.host}/*" in error["message"]
    assert httpx.put(f"{cache.url}/v2/{repo}/manifests/v1", content=b"{}").status_code == 403
    assert httpx.delete(f"{cache.url}/v2/{repo}/manifests/v1").status_code == 403
    image = make_image(seed=repo)
    layout = tmp_path / "src"
    push(image, upstream.url, "plain-source", "v1")
    pull_with_skopeo(skopeo, cache, "mirror/plain-source:v1", layout)
    refused = skopeo.run("copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{cache.host}/{repo}:v1",
                         check=False)
    assert refused.returncode != 0
    assert "pull-through cache" in refused.stderr
    # Outside the rule, pushes work as ever.
    push(image, cache.url, unique("own"), "v1")


def test_a_blob_head_on_a_miss_answers_from_the_manifest_without_fetching(
    upstream: DistributionServer, cache: DockyardServer
) -> None:
    repo = unique("head")
    image = make_image(seed=repo, layers=1, layer_size=100_000)
    push(image, upstream.url, repo, "v1")
    # Docker's resolver asks HEAD first: a HEAD of a tag on a miss fills it as a GET does.
    manifest_head = httpx.head(f"{cache.url}/v2/mirror/{repo}/manifests/v1", headers={"Accept": image.media_type})
    assert manifest_head.status_code == 200 and manifest_head.headers["docker-content-digest"] == image.digest
    assert httpx.get(f"{cache.url}/v2/mirror/{repo}/manifests/v1",
                     headers={"Accept": image.media_type}).status_code == 200
    assert count(logged_requests(upstream, f"/v2/{repo}/"), "GET", "/manifests/v1") == 1
    layer = image.blobs[1]
    head = httpx.head(f"{cache.url}/v2/mirror/{repo}/blobs/{layer.digest}")
    assert head.status_code == 200 and head.headers["content-length"] == str(layer.size)
    assert count(logged_requests(upstream, f"/v2/{repo}/"), "GET", "/blobs/") == 0
    # A digest no cached manifest names is not fetched: the cache proxies only what it cached.
    other = compute_digest(b"not in any manifest")
    assert httpx.get(f"{cache.url}/v2/mirror/{repo}/blobs/{other}").status_code == 404
    assert count(logged_requests(upstream, f"/v2/{repo}/"), "GET", other) == 0


def test_a_client_that_hangs_up_does_not_abort_the_fill(upstream: DistributionServer, cache: DockyardServer) -> None:
    repo = unique("hangup")
    image = make_image(seed=repo, layers=1, layer_size=8 * MiB)
    push(image, upstream.url, repo, "v1")
    base = f"{cache.url}/v2/mirror/{repo}"
    assert httpx.get(f"{base}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
    layer = image.blobs[1]
    with httpx.stream("GET", f"{base}/blobs/{layer.digest}") as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = httpx.get(f"{base}/blobs/{layer.digest}", timeout=30)
        if got.status_code == 200 and compute_digest(got.content) == layer.digest:
            break
        time.sleep(0.1)
    assert compute_digest(got.content) == layer.digest
    assert count(logged_requests(upstream, f"/v2/{repo}/"), "GET", f"/blobs/{layer.digest}") == 1


def test_a_lying_upstream_is_refused_and_nothing_is_stored(upstream: DistributionServer, tmp_path: Path) -> None:
    """An upstream that sends wrong bytes for a layer's digest: the client streaming the fill never gets the whole
    blob (its response is cut short), no blob and no upload session is left, and the next pull fetches again."""
    repo = unique("liar")
    image = make_image(seed=repo, layers=1, layer_size=3 * MiB)
    push(image, upstream.url, repo, "v1")
    layer = image.blobs[1]
    with FaultProxy(upstream.url) as proxy, cache_server(tmp_path / "cache", f"liar/*={proxy.url}/*") as cache:
        base = f"{cache.url}/v2/liar/{repo}"
        assert httpx.get(f"{base}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
        proxy.inject_corruption(path_contains=f"/blobs/{layer.digest}")
        status, received = 0, b""
        try:
            with httpx.stream("GET", f"{base}/blobs/{layer.digest}", timeout=30) as response:
                status = response.status_code
                for piece in response.iter_bytes():
                    received += piece
        except httpx.TransportError:
            pass  # the response was cut short: what the client must see
        assert not (status == 200 and len(received) == layer.size)
        assert len(proxy.requests("GET", f"/blobs/{layer.digest}")) == 1
        blob_file = cache.data_dir / "blobs" / "sha256" / layer.digest[7:9] / layer.digest[7:]
        assert not blob_file.exists()
        uploads = cache.data_dir / "uploads"
        deadline = time.monotonic() + 5  # the failed fill drops its session as it ends
        while any(uploads.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(uploads.iterdir()) == []
        proxy.clear()
        good = httpx.get(f"{base}/blobs/{layer.digest}", timeout=30)
        assert good.status_code == 200 and compute_digest(good.content) == layer.digest
        deadline = time.monotonic() + 10  # committed just after the client had its last chunk
        while not blob_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert blob_file.exists()


def test_tags_are_revalidated_after_ttl_with_a_head(upstream: DistributionServer, tmp_path: Path) -> None:
    repo = unique("ttl")
    first = make_image(seed=repo + "1")
    push(first, upstream.url, repo, "v1")
    with cache_server(tmp_path / "cache", f"ttl/*=http://{upstream.host}/*,ttl=1s") as cache:
        url = f"{cache.url}/v2/ttl/{repo}/manifests/v1"
        accept = {"Accept": first.media_type}
        assert httpx.get(url, headers=accept).headers["docker-content-digest"] == first.digest
        assert httpx.get(url, headers=accept).status_code == 200  # within ttl: nothing upstream
        seen = logged_requests(upstream, f"/v2/{repo}/manifests/")
        assert (count(seen, "GET", "/v1"), count(seen, "HEAD", "/v1")) == (1, 0)
        time.sleep(1.2)
        assert httpx.get(url, headers=accept).headers["docker-content-digest"] == first.digest
        seen = logged_requests(upstream, f"/v2/{repo}/manifests/")
        assert (count(seen, "GET", "/v1"), count(seen, "HEAD", "/v1")) == (1, 1)
        second = make_image(seed=repo + "2")
        push(second, upstream.url, repo, "v1")
        time.sleep(1.2)
        assert httpx.get(url, headers=accept).headers["docker-content-digest"] == second.digest
        seen = logged_requests(upstream, f"/v2/{repo}/manifests/")
        assert count(seen, "HEAD", "/v1") == 2 and count(seen, "GET", second.digest) == 1
        # The tag disappears upstream: the check's 404 keeps the cached copy served.
        assert httpx.delete(f"{upstream.url}/v2/{repo}/manifests/{second.digest}").status_code == 202
        time.sleep(1.2)
        kept = httpx.get(url, headers=accept)
        assert kept.status_code == 200 and kept.headers["docker-content-digest"] == second.digest
        seen = logged_requests(upstream, f"/v2/{repo}/manifests/")
        assert [s for s in seen if s[0] == "HEAD"][-1] == ("HEAD", f"/v2/{repo}/manifests/v1", 404)
        assert count(seen, "HEAD", "/v1") == 3 and count(seen, "GET", "/v1") == 1


def test_cache_check_timeout_bounds_a_hanging_tag_check(tmp_path: Path) -> None:
    """An upstream that stops answering tag checks: with ``--cache-check-timeout 1`` the stale copy is served
    within seconds (the default waits 10 s)."""
    config = b"{}"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": compute_digest(config), "size": 2},
        "layers": [],
    }).encode()
    release = threading.Event()

    def route(method: str, path: str) -> Reply | None:
        if path == "/v2/":
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        if path.startswith("/v2/slow/manifests/"):
            if method == "HEAD":
                release.wait(30)  # the check hangs until the test ends
            return Reply(200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                               "Docker-Content-Digest": compute_digest(manifest)}, manifest)
        return None

    with HostileRegistry(route) as upstream, DockyardServer(
        tmp_path / "cache", "--cache-rule", f"mirror/*={upstream.url}/*,ttl=0s", "--cache-check-timeout", "1"
    ) as cache:
        try:
            url = f"{cache.url}/v2/mirror/slow/manifests/v1"
            accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
            assert httpx.get(url, headers=accept, timeout=10).status_code == 200
            stale = httpx.get(url, headers=accept, timeout=5)
            assert stale.status_code == 200 and stale.headers["docker-content-digest"] == compute_digest(manifest)
            assert ("HEAD", "/v2/slow/manifests/v1") in upstream.requests
        finally:
            release.set()


def test_a_stopped_upstream_still_serves_cached_tags_and_digests(tmp_path: Path, skopeo: Skopeo) -> None:
    upstream = DistributionServer(tmp_path / "upstream").start()
    try:
        repo = unique("offline")
        image = make_image(seed=repo, layers=2, layer_size=300_000)
        push(image, upstream.url, repo, "v1")
        with cache_server(tmp_path / "cache", f"off/*=http://{upstream.host}/*,ttl=0s") as cache:
            pull_with_skopeo(skopeo, cache, f"off/{repo}:v1", tmp_path / "warm")
            upstream.stop()
            pull_with_skopeo(skopeo, cache, f"off/{repo}:v1", tmp_path / "tag")
            pull_with_skopeo(skopeo, cache, f"off/{repo}@{image.digest}", tmp_path / "digest")
            assert {b.digest for b in image.blobs} <= layout_blobs(tmp_path / "tag")
            # What was never cached cannot be served: a clear 503, not a hang.
            missing = httpx.get(f"{cache.url}/v2/off/{repo}/manifests/v2", timeout=30)
            assert missing.status_code == 503
            assert missing.json()["errors"][0]["code"] == "UNAVAILABLE"
    finally:
        upstream.stop()


@pytest.mark.parametrize("status", [429, 503])
def test_a_429_or_503_storm_serves_the_stale_copy_and_backs_off(
    upstream: DistributionServer, tmp_path: Path, status: int
) -> None:
    repo = unique("storm")
    image = make_image(seed=repo)
    push(image, upstream.url, repo, "v1")
    with FaultProxy(upstream.url) as proxy, cache_server(
        tmp_path / "cache", f"storm/*={proxy.url}/*,ttl=0s"
    ) as cache:
        url = f"{cache.url}/v2/storm/{repo}/manifests/v1"
        accept = {"Accept": image.media_type}
        assert httpx.get(url, headers=accept).status_code == 200
        proxy.inject_status(status, times=None, headers={"Retry-After": "30"})
        before = len(proxy.requests())
        for _ in range(5):
            answer = httpx.get(url, headers=accept)
            assert answer.status_code == 200 and answer.headers["docker-content-digest"] == image.digest
        asked = len(proxy.requests()) - before
        if status == 429:
            # One HEAD met the 429; Retry-After (30 s) keeps every later pull from asking again.
            assert asked == 1
        else:
            assert 1 <= asked <= 5  # a failing upstream is asked again after 1 s, 2 s, 4 s …
        # A miss has no cached copy to fall back on: the client is told to come back later.
        miss = httpx.get(f"{cache.url}/v2/storm/{repo}/manifests/other", headers=accept)
        assert miss.status_code == status and int(miss.headers["retry-after"]) > 0
        if status == 429:
            assert len(proxy.requests()) - before == 1


def _docker_config_login(server: DistributionServer, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker config in ``directory`` holding the test user's login to ``server``, the server's
    ``DOCKER_CONFIG`` (a cache rule's ``credentials`` names an entry of it)."""
    directory.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {server.host: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))


def test_htpasswd_upstream_with_docker_config_credentials_and_the_dockyard_cli(
    distribution_auth_server: DistributionServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = unique("authup")
    image = make_image(seed=repo, layers=2)
    push(image, distribution_auth_server.url, repo, "v1", auth=(USER, PASSWORD))
    _docker_config_login(distribution_auth_server, tmp_path / "docker", monkeypatch)
    rule = f"priv/*=http://{distribution_auth_server.host}/*,credentials={distribution_auth_server.host}"
    with cache_server(tmp_path / "cache", rule) as cache:
        env = {**subprocess_env(), "DOCKER_CONFIG": str(tmp_path / "client-config")}
        dest = tmp_path / "pulled"
        result = subprocess.run(
            [sys.executable, "-m", "dockyard", "copy", f"{cache.host}/priv/{repo}:v1", f"oci:{dest}"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert {b.digest for b in image.blobs} <= layout_blobs(dest)


def test_token_auth_dockyard_upstream_and_microsofts_sdk(tmp_path: Path, htpasswd_file: Path) -> None:
    require_module("azure.containerregistry", "azure-containerregistry==1.2.0")
    from azure.containerregistry import ContainerRegistryClient

    upstream = DockyardServer(tmp_path / "upstream", "--htpasswd", str(htpasswd_file),
                              "--access-log", str(tmp_path / "upstream" / "access.log"))
    with upstream:
        repo = unique("tokenup")
        image = make_image(seed=repo, layers=2)
        push(image, upstream.url, repo, "v1", auth=(USER, PASSWORD))
        password = tmp_path / "password"
        password.write_text(PASSWORD + "\n")
        rule = f"team/*=http://{upstream.host}/*,username={USER},password_file={password}"
        with cache_server(tmp_path / "cache", rule) as cache, ContainerRegistryClient(cache.url, None) as client:
                result = client.get_manifest(f"team/{repo}", "v1", enforce_https=False)
                assert result.digest == image.digest
                for blob in image.blobs:
                    data = b"".join(client.download_blob(f"team/{repo}", blob.digest, enforce_https=False))
                    assert compute_digest(data) == blob.digest
                properties = client.get_repository_properties(f"team/{repo}", enforce_https=False)
                assert properties.tag_count == 1
                assert f"team/{repo}" in list(client.list_repository_names(enforce_https=False))
                tag = client.get_tag_properties(f"team/{repo}", "v1", enforce_https=False)
                assert tag.digest == image.digest
        # Token auth: the first request of each kind meets a 401 challenge; what was served counts.
        served = [s for s in logged_requests(upstream, f"/v2/{repo}/") if s[2] == 200]
        assert count(served, "GET", "/manifests/v1") == 1
        for blob in image.blobs:
            assert count(served, "GET", blob.digest) == 1


def podman_pull(tmp_path: Path, reference: str, *, registries_conf: Path | None = None) -> str:
    """``podman pull reference`` with its own storage under ``tmp_path``; returns its standard output."""
    program = require_program("podman", "podman")
    env = {**subprocess_env(), "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    if registries_conf is not None:
        env["CONTAINERS_REGISTRIES_CONF"] = str(registries_conf)
    runroot = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
    try:
        proc = subprocess.run(
            [program, "--root", str(tmp_path / "root"), "--runroot", str(runroot), "--storage-driver", "vfs",
             "pull", "--tls-verify=false", reference],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run(["rm", "-rf", str(runroot)], check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_podman_pulls_through_the_cache(upstream: DistributionServer, cache: DockyardServer, tmp_path: Path) -> None:
    repo = unique("podman")
    image = make_image(seed=repo, layers=2, docker=True)
    push(image, upstream.url, repo, "v1")
    out = podman_pull(tmp_path, f"{cache.host}/mirror/{repo}:v1")
    assert image.blobs[0].digest.partition(":")[2] in out  # podman prints the image ID: the config's digest
    seen = logged_requests(upstream, f"/v2/{repo}/")
    for blob in image.blobs:
        assert count(seen, "GET", blob.digest) == 1


def test_podman_uses_the_cache_as_a_registries_conf_mirror(
    upstream: DistributionServer, cache: DockyardServer, tmp_path: Path
) -> None:
    """docs/mirror.md's registries.conf: a registry name whose mirror is ``CACHE/mirror``; podman pulls the
    image by its usual name and gets it through the cache (the registry name itself does not resolve)."""
    repo = unique("mirrored")
    image = make_image(seed=repo, layers=1, docker=True)
    push(image, upstream.url, repo, "v1")
    conf = tmp_path / "registries.conf"
    conf.write_text(
        "[[registry]]\n"
        'prefix = "registry.invalid"\nlocation = "registry.invalid"\n'
        "[[registry.mirror]]\n"
        f'location = "{cache.host}/mirror"\ninsecure = true\n'
    )
    out = podman_pull(tmp_path, f"registry.invalid/{repo}:v1", registries_conf=conf)
    assert image.blobs[0].digest.partition(":")[2] in out
    seen = logged_requests(upstream, f"/v2/{repo}/")
    assert count(seen, "GET", "/manifests/v1") == 1
    for blob in image.blobs:
        assert count(seen, "GET", blob.digest) == 1


@pytest.mark.parametrize("metadata", ["sqlite", "postgresql"])
def test_two_servers_on_one_database_fetch_each_blob_once(
    upstream: DistributionServer, tmp_path: Path, request: pytest.FixtureRequest, metadata: str
) -> None:
    """Two server processes sharing a blob folder and a metadata database — the data directory's SQLite (what
    ``--workers`` processes share) or PostgreSQL (replicas) — with 8 clients on each: one upstream GET per blob
    and one for the tag's manifest (the fill's lease is held in the shared database)."""
    repo = unique(f"replicas-{metadata}")
    image = make_image(seed=repo, layers=2, layer_size=2 * MiB)
    push(image, upstream.url, repo, "v1")
    shared = tmp_path / "shared"
    rule = ["--cache-rule", f"rep/*=http://{upstream.host}/*"]
    if metadata == "postgresql":
        rule += ["--metadata-url", request.getfixturevalue("postgres_url")]
    with (
        DockyardServer(tmp_path / "a", *rule, data_dir=shared) as a,
        DockyardServer(tmp_path / "b", *rule, data_dir=shared) as b,
    ):
        def pull(i: int) -> set[str]:
            with httpx.Client(base_url=f"{(a, b)[i % 2].url}/v2/rep/{repo}", timeout=60) as http:
                manifest = http.get("/manifests/v1", headers={"Accept": image.media_type})
                assert manifest.status_code == 200, manifest.text
                return {compute_digest(http.get(f"/blobs/{blob.digest}").content) for blob in image.blobs}

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(pull, range(16)))
    assert all(r == {b.digest for b in image.blobs} for r in results)
    seen = logged_requests(upstream, f"/v2/{repo}/")
    for blob in image.blobs:
        assert count(seen, "GET", f"/blobs/{blob.digest}") == 1, seen
    assert count(seen, "GET", "/manifests/v1") == 1, seen


def test_a_blob_streams_to_the_client_before_the_upstream_has_sent_it_all(
    upstream: DistributionServer, tmp_path: Path
) -> None:
    """The upstream sends 4 MiB of a 12 MiB layer and then stalls: the client streaming the fill already holds
    bytes of the layer while the cache has not got (let alone stored) the whole of it."""
    repo = unique("stream")
    image = make_image(seed=repo, layers=1, layer_size=12 * MiB)
    push(image, upstream.url, repo, "v1")
    layer = image.blobs[1]
    received: list[int] = []
    got_bytes = threading.Event()

    def read(url: str) -> None:
        try:
            with httpx.stream("GET", url, timeout=30) as response:
                assert response.status_code == 200
                for piece in response.iter_bytes():
                    received.append(len(piece))
                    got_bytes.set()
        except httpx.HTTPError:
            pass  # cut short when the proxy stops

    with FaultProxy(upstream.url) as proxy, DockyardServer(
        tmp_path / "cache", "--cache-rule", f"st/*={proxy.url}/*"
    ) as cache:
        base = f"{cache.url}/v2/st/{repo}"
        assert httpx.get(f"{base}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
        stall = proxy.inject_stall(4 * MiB, path_contains=f"/blobs/{layer.digest}")
        reader = threading.Thread(target=read, args=(f"{base}/blobs/{layer.digest}",), daemon=True)
        reader.start()
        assert stall.stalled.wait(10)
        assert got_bytes.wait(10), "the client got nothing while the upstream was still sending"
        assert 0 < sum(received) < layer.size
        blob_file = cache.data_dir / "blobs" / "sha256" / layer.digest[7:9] / layer.digest[7:]
        assert not blob_file.exists()
        proxy.stop()  # ends the stalled transfer (and with it the client's download)
        reader.join(30)
    assert not reader.is_alive()


def test_config_file_rules_serve_a_repository_target_credentials_ttl_and_allow_push(
    upstream: DistributionServer, distribution_auth_server: DistributionServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``[[cache_rules]]`` tables of a config file, served: a one-repository TARGET, ``credentials`` naming a
    docker config entry with ``ttl = "0s"`` (every pull of the tag sends one HEAD), ``allow_push``, and a
    ``username``/``password_file`` the upstream rejects."""
    solo, private = unique("solo"), unique("private")
    image = make_image(seed=solo, layers=1)
    push(image, upstream.url, solo, "v1")
    secret = make_image(seed=private, layers=1)
    push(secret, distribution_auth_server.url, private, "v1", auth=(USER, PASSWORD))
    _docker_config_login(distribution_auth_server, tmp_path / "docker", monkeypatch)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    config = tmp_path / "config.toml"
    config.write_text(
        "[[cache_rules]]\n"
        f'target = "one"\nsource = "http://{upstream.host}/{solo}"\n'
        "[[cache_rules]]\n"
        f'target = "priv/*"\nsource = "http://{distribution_auth_server.host}/*"\n'
        f'credentials = "{distribution_auth_server.host}"\nttl = "0s"\n'
        "[[cache_rules]]\n"
        f'target = "open/*"\nsource = "http://{upstream.host}/*"\nallow_push = true\n'
        "[[cache_rules]]\n"
        f'target = "wrong/*"\nsource = "http://{distribution_auth_server.host}/*"\n'
        f'username = "{USER}"\npassword_file = "{wrong}"\n'
    )
    with DockyardServer(tmp_path / "cache", "--config", str(config)) as cache:
        one = httpx.get(f"{cache.url}/v2/one/manifests/v1", headers={"Accept": image.media_type})
        assert one.status_code == 200 and one.headers["docker-content-digest"] == image.digest
        assert count(logged_requests(upstream, f"/v2/{solo}/"), "GET", "/manifests/v1") == 1
        # Only the one repository is a cache: a neighbour is a plain repository.
        assert httpx.get(f"{cache.url}/v2/one/other/manifests/v1").status_code == 404

        url = f"{cache.url}/v2/priv/{private}/manifests/v1"
        for _ in range(3):
            answer = httpx.get(url, headers={"Accept": secret.media_type})
            assert answer.status_code == 200 and answer.headers["docker-content-digest"] == secret.digest
        served = [s for s in logged_requests(distribution_auth_server, f"/v2/{private}/manifests/") if s[2] == 200]
        assert (count(served, "GET", "/v1"), count(served, "HEAD", "/v1")) == (1, 2)

        pushed = make_image(seed=f"{solo}-pushed", layers=1)
        push(pushed, cache.url, f"open/{unique('mine')}", "v1")  # allow_push: taken as in any repository
        assert httpx.post(f"{cache.url}/v2/priv/{private}/blobs/uploads/").status_code == 403
        # Credentials the upstream rejects: 502 naming the rule, not the upstream's 401.
        rejected = httpx.get(f"{cache.url}/v2/wrong/{private}/manifests/v1", headers={"Accept": secret.media_type})
        assert rejected.status_code == 502
        assert rejected.json()["errors"][0]["detail"]["rule"] == f"wrong/*=http://{distribution_auth_server.host}/*"


def test_a_write_locked_cached_tag_is_not_replaced_by_the_upstreams_new_manifest(
    upstream: DistributionServer, tmp_path: Path
) -> None:
    """ACR's ``/acr/v1`` properties of a cached repository work as for any other: a tag locked with
    ``writeEnabled: false`` (through Microsoft's SDK) keeps its digest when the upstream's tag moves."""
    require_module("azure.containerregistry", "azure-containerregistry==1.2.0")
    from azure.containerregistry import ContainerRegistryClient

    repo = unique("locked")
    first, second = make_image(seed=f"{repo}-1"), make_image(seed=f"{repo}-2")
    push(first, upstream.url, repo, "v1")
    with cache_server(tmp_path / "cache", f"lk/*=http://{upstream.host}/*,ttl=0s") as cache, \
            ContainerRegistryClient(cache.url, None) as client:
        assert client.get_manifest(f"lk/{repo}", "v1", enforce_https=False).digest == first.digest
        locked = client.update_tag_properties(f"lk/{repo}", "v1", can_write=False, enforce_https=False)
        assert locked.can_write is False
        push(second, upstream.url, repo, "v1")
        assert client.get_manifest(f"lk/{repo}", "v1", enforce_https=False).digest == first.digest
        assert client.get_tag_properties(f"lk/{repo}", "v1", enforce_https=False).can_write is False
        client.update_tag_properties(f"lk/{repo}", "v1", can_write=True, enforce_https=False)
        assert client.get_manifest(f"lk/{repo}", "v1", enforce_https=False).digest == second.digest


@contextmanager
def _behind_a_fault_proxy(
    upstream: DistributionServer, tmp_path: Path, name: str, options: str = ""
) -> Iterator[tuple[FaultProxy, str, Content]]:
    """A one-layer image pushed to ``upstream`` as ``<name>-…:v1``, and a cache of it whose upstream requests go
    through a fault proxy (rule ``options`` appended): the proxy, the cached repository's ``/v2`` URL, the image."""
    repo = unique(name)
    image = make_image(seed=repo, layers=1)
    push(image, upstream.url, repo, "v1")
    with FaultProxy(upstream.url) as proxy, cache_server(tmp_path / "cache", f"fp/*={proxy.url}/*{options}") as cache:
        yield proxy, f"{cache.url}/v2/fp/{repo}", image


def test_after_a_429_the_upstream_is_asked_again_once_retry_after_has_passed(
    upstream: DistributionServer, tmp_path: Path
) -> None:
    """``Retry-After: 1``: pulls in that second ask nothing upstream (a cached blob neither), the first pull
    after it sends one HEAD; the client sees 200 throughout."""
    with _behind_a_fault_proxy(upstream, tmp_path, "retry", ",ttl=0s") as (proxy, base, image):
        layer = image.blobs[1]
        accept = {"Accept": image.media_type}
        assert httpx.get(f"{base}/manifests/v1", headers=accept).status_code == 200
        assert httpx.get(f"{base}/blobs/{layer.digest}").status_code == 200
        proxy.inject_status(429, times=None, headers={"Retry-After": "1"})
        before = len(proxy.requests())
        for _ in range(3):
            assert httpx.get(f"{base}/manifests/v1", headers=accept).status_code == 200
            blob = httpx.get(f"{base}/blobs/{layer.digest}")
            assert blob.status_code == 200 and compute_digest(blob.content) == layer.digest
        assert [(s.method, s.status) for s in proxy.requests()[before:]] == [("HEAD", 429)]
        time.sleep(1.2)
        assert httpx.get(f"{base}/manifests/v1", headers=accept).status_code == 200
        assert [(s.method, s.status) for s in proxy.requests()[before:]] == [("HEAD", 429), ("HEAD", 429)]


def test_a_cold_blob_miss_that_meets_a_429_asks_upstream_once(upstream: DistributionServer, tmp_path: Path) -> None:
    with _behind_a_fault_proxy(upstream, tmp_path, "cold429") as (proxy, base, image):
        layer = image.blobs[1]
        assert httpx.get(f"{base}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
        proxy.inject_status(429, times=None, headers={"Retry-After": "30"}, path_contains="/blobs/")
        for _ in range(2):
            refused = httpx.get(f"{base}/blobs/{layer.digest}")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert len(proxy.requests("GET", f"/blobs/{layer.digest}")) == 1


def test_a_root_mirror_rule_and_the_most_specific_rule_wins(upstream: DistributionServer, tmp_path: Path) -> None:
    """``*`` makes every repository a cache (the root mirror Docker's ``registry-mirrors`` needs); a repository
    rule beside it wins for its name."""
    plain, nested, pinned = unique("root"), f"{unique('ns')}/app", unique("pinned")
    images = {name: make_image(seed=name, layers=1) for name in (plain, nested, pinned)}
    for name, image in images.items():
        push(image, upstream.url, name, "v1")
    with cache_server(tmp_path / "cache", f"*=http://{upstream.host}/*",
                      f"special=http://{upstream.host}/{pinned}") as cache:
        for local, name in ((plain, plain), (nested, nested), ("special", pinned)):
            got = httpx.get(f"{cache.url}/v2/{local}/manifests/v1", headers={"Accept": images[name].media_type})
            assert got.status_code == 200 and got.headers["docker-content-digest"] == images[name].digest
            assert count(logged_requests(upstream, f"/v2/{name}/"), "GET", "/manifests/v1") == 1
        refused = httpx.post(f"{cache.url}/v2/{unique('any')}/blobs/uploads/")
        assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "DENIED"
