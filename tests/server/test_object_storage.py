"""``dockyard serve --storage-url s3://…`` (moto_server) and ``az://…`` (Azurite): real pushes and pulls with
skopeo and the SDK, blob GETs redirected to presigned URLs or streamed, an upload continued by a second server
process, a rotted stored copy replaced, and ``dockyard gc`` over object storage."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import obstore
import pytest

from dockyard import ContainerRegistryClient
from dockyard.layout import OCILayout
from dockyard.oci import compute_digest
from dockyard.oci.digest import Digest
from dockyard.server.storage.factory import open_stores
from dockyard.server.storage.objects import open_object_store, parse_object_url
from tests.conftest import unique
from tests.support.images import make_image, push, random_bytes, upload_blob, write_to_layout
from tests.support.objectstores import Emulator
from tests.support.servers import DockyardServer, subprocess_env
from tests.support.skopeo import Skopeo


class Deployment:
    """One storage URL in an emulator, a data dir, and the ``dockyard serve`` processes sharing both."""

    def __init__(self, emulator: Emulator, workdir: Path) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.url = emulator.new_url()
        self.servers: list[DockyardServer] = []

    def serve(self, *extra: str) -> DockyardServer:
        """Start one more ``dockyard serve`` on this storage (the same data dir as the others)."""
        server = DockyardServer(self.workdir / f"serve-{len(self.servers)}", "--storage-url", self.url, *extra,
                                data_dir=self.workdir / "data")
        with pytest.MonkeyPatch.context() as env:
            for key, value in self.emulator.env().items():
                env.setenv(key, value)
            server.start()
        self.servers.append(server)
        return server

    def key(self, digest: str) -> str:
        algorithm, hex_digest = digest.split(":")
        return f"blobs/{algorithm}/{hex_digest[:2]}/{hex_digest}"

    def store(self) -> obstore.store.S3Store | obstore.store.AzureStore:
        """A client of the same bucket/container and prefix, for looking under the server."""
        with pytest.MonkeyPatch.context() as env:
            for key, value in self.emulator.env().items():
                env.setenv(key, value)
            return open_object_store(parse_object_url(self.url))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="module", params=["s3", "az"])
def deployment(
    request: pytest.FixtureRequest, object_storage: Callable[[str], Emulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Two servers on one storage URL: ``servers[0]`` redirects blob GETs, ``servers[1]`` streams them."""
    emulator = object_storage(request.param)
    deployed = Deployment(emulator, tmp_path_factory.mktemp(f"objstore-{request.param}"))
    try:
        deployed.serve()
        deployed.serve("--storage-redirect", "off")
        yield deployed
    finally:
        deployed.stop()


def test_blob_get_redirects_to_a_presigned_url_or_streams_when_redirect_is_off(deployment: Deployment) -> None:
    redirecting, streaming = deployment.servers
    repo = unique("objstore/get")
    data = random_bytes(300_000, seed=repo)
    digest = upload_blob(httpx.Client(), redirecting.url, repo, data)

    answer = httpx.get(f"{redirecting.url}/v2/{repo}/blobs/{digest}")
    assert answer.status_code == 307
    location = answer.headers["Location"]
    assert location.startswith(deployment.emulator.endpoint)
    assert httpx.get(location).content == data
    head = httpx.head(f"{redirecting.url}/v2/{repo}/blobs/{digest}")
    assert (head.status_code, head.headers["Content-Length"], head.headers["Docker-Content-Digest"]) == (
        200, str(len(data)), digest), "HEAD is answered by the server: a presigned URL is signed for GET only"

    streamed = httpx.get(f"{streaming.url}/v2/{repo}/blobs/{digest}")
    assert (streamed.status_code, streamed.content) == (200, data)
    ranged = httpx.get(f"{streaming.url}/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert (ranged.status_code, ranged.content) == (206, data[10:20])


@pytest.mark.parametrize("server_index", [0, 1], ids=["redirect-on", "redirect-off"])
def test_skopeo_push_and_pull(deployment: Deployment, server_index: int, tmp_path: Path) -> None:
    server = deployment.servers[server_index]
    skopeo = Skopeo(tmp_path / "skopeo")
    repo = unique("objstore/skopeo")
    image = make_image(layers=3, layer_size=200_000, seed=repo)
    source = OCILayout(tmp_path / "source").create()
    write_to_layout(image, source, tag="v1")

    skopeo.copy(f"oci:{source.path}:v1", f"docker://{server.host}/{repo}:v1", "--preserve-digests")
    back = tmp_path / "back"
    skopeo.copy(f"docker://{server.host}/{repo}:v1", f"oci:{back}:v1", "--preserve-digests")
    pulled = OCILayout.open(back)
    for blob in image.all_blobs():
        assert pulled.read_blob(blob.digest) == blob.data


@pytest.mark.parametrize("server_index", [0, 1], ids=["redirect-on", "redirect-off"])
def test_sdk_chunked_upload_and_download(deployment: Deployment, server_index: int) -> None:
    server = deployment.servers[server_index]
    repo = unique("objstore/sdk")
    data = random_bytes(9 * 1024 * 1024 + 123, seed=repo)  # several PATCHes up
    with ContainerRegistryClient(server.url, None) as client:
        digest, size = client.upload_blob(repo, io.BytesIO(data))
        assert (digest, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
        assert b"".join(client.download_blob(repo, digest)) == data


def test_an_upload_patched_through_one_server_finishes_through_another(deployment: Deployment) -> None:
    first, second = deployment.servers
    repo = unique("objstore/replicas")
    data = random_bytes(3 * 1024 * 1024, seed=repo)
    digest = compute_digest(data)
    with httpx.Client(timeout=30) as http:
        start = http.post(f"{first.url}/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202
        path = start.headers["Location"]
        one = http.patch(f"{first.url}{path}", content=data[:1_000_000],
                         headers={"Content-Range": "0-999999", "Content-Type": "application/octet-stream"})
        assert one.status_code == 202, one.text
        two = http.patch(f"{second.url}{one.headers['Location']}", content=data[1_000_000:2_000_000],
                         headers={"Content-Range": "1000000-1999999", "Content-Type": "application/octet-stream"})
        assert two.status_code == 202, two.text
        assert two.headers["Range"] == "0-1999999"
        status = http.get(f"{first.url}{two.headers['Location']}")
        assert (status.status_code, status.headers["Range"]) == (204, "0-1999999")
        done = http.put(f"{second.url}{two.headers['Location']}", params={"digest": digest}, content=data[2_000_000:],
                        headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
        got = http.get(f"{first.url}/v2/{repo}/blobs/{digest}", follow_redirects=True)
        assert got.content == data
    assert not [m for page in obstore.list(deployment.store(), "uploads/") for m in page
                if path.rstrip("/").rpartition("/")[2] in m["path"]], "the finished session is removed"


def test_a_wrong_digest_is_refused_and_stores_nothing(deployment: Deployment) -> None:
    server = deployment.servers[0]
    repo = unique("objstore/wrong")
    data = random_bytes(100_000, seed=repo)
    wrong = compute_digest(data + b"!")
    with httpx.Client() as http:
        start = http.post(f"{server.url}/v2/{repo}/blobs/uploads/")
        done = http.put(f"{server.url}{start.headers['Location']}", params={"digest": wrong}, content=data)
    assert done.status_code == 400 and done.json()["errors"][0]["code"] == "DIGEST_INVALID"
    with pytest.raises(FileNotFoundError):
        obstore.head(deployment.store(), deployment.key(wrong))
    with pytest.raises(FileNotFoundError):
        obstore.head(deployment.store(), deployment.key(compute_digest(data)))


def test_a_stored_copy_that_does_not_match_is_replaced_by_a_new_push(deployment: Deployment) -> None:
    server = deployment.servers[1]
    repo = unique("objstore/rot")
    data = random_bytes(50_000, seed=repo)
    digest = compute_digest(data)
    obstore.put(deployment.store(), deployment.key(digest), b"rotten bytes")
    upload_blob(httpx.Client(), server.url, repo, data, digest)
    assert bytes(obstore.get(deployment.store(), deployment.key(digest)).bytes()) == data
    assert httpx.get(f"{server.url}/v2/{repo}/blobs/{digest}").content == data


def test_readyz_checks_the_object_store(deployment: Deployment) -> None:
    for server in deployment.servers:
        assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_gc_removes_unreferenced_blobs_and_stale_sessions_from_object_storage(deployment: Deployment) -> None:
    server = deployment.servers[0]
    repo = unique("objstore/gc")
    image = make_image(layers=1, layer_size=10_000, seed=repo)
    push(image, server.url, repo, "v1")
    orphan = upload_blob(httpx.Client(), server.url, repo, random_bytes(20_000, seed=repo + "-orphan"))
    stale = httpx.post(f"{server.url}/v2/{repo}/blobs/uploads/").headers["Location"].rstrip("/").rpartition("/")[2]

    env = subprocess_env() | deployment.emulator.env()
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--data-dir", str(deployment.workdir / "data"),
         "--storage-url", deployment.url, "--min-age", "0"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"blob {orphan}" in result.stdout and f"upload {stale}" in result.stdout
    with pytest.raises(FileNotFoundError):
        obstore.head(deployment.store(), deployment.key(orphan))
    for blob in image.all_blobs():
        assert obstore.head(deployment.store(), deployment.key(blob.digest))["size"] == len(blob.data)
    layer = image.all_blobs()[-1]
    pulled = httpx.get(f"{server.url}/v2/{repo}/blobs/{layer.digest}", follow_redirects=True)
    assert pulled.content == layer.data


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize("parts", [1, 2])
async def test_a_finish_commits_the_bytes_it_verified_when_a_racing_request_rewrites_the_session(
    deployment: Deployment, parts: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in deployment.emulator.env().items():
        monkeypatch.setenv(key, value)
    _, uploads = open_stores(deployment.url, tmp_path)
    data = random_bytes(200_000, seed=f"race-{parts}")
    session = uploads.create("objstore/race")
    offset = 0
    for piece in (data,) if parts == 1 else (data[:80_000], data[80_000:]):
        offset = await uploads.append(session.id, _chunks(piece), offset)
    async with uploads.sealed(session.id, "sha256") as (digest, size):
        assert (digest, size) == (compute_digest(data), len(data))
        # Another request rewrites the first part between the verification and the commit.
        obstore.put(deployment.store(), f"uploads/{session.id}/parts/{0:020d}", b"x" * 80_000)
        uploads.commit(session.id, Digest.parse(digest))
    uploads.discard(session.id)
    assert bytes(obstore.get(deployment.store(), deployment.key(digest)).bytes()) == data


def test_an_unusable_bucket_answers_503_and_readyz_says_why(
    object_storage: Callable[[str], Emulator], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for kind in ("s3", "az"):
        emulator = object_storage(kind)
        deployed = Deployment(emulator, tmp_path / kind)
        deployed.url = f"{kind}://missing-{kind}-container/registry"  # never created
        try:
            server = deployed.serve()
            repo = unique("objstore/missing")
            start = httpx.post(f"{server.url}/v2/{repo}/blobs/uploads/")
            assert start.status_code == 503, start.text
            assert start.json()["errors"][0]["code"] == "UNAVAILABLE"
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503 and "blobs" in ready.text
        finally:
            deployed.stop()
