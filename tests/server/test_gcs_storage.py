"""``--storage-url gs://bucket/prefix`` (Google Cloud Storage through obstore): the URL is parsed, credentials come
from the standard Google variables, a missing or unusable key is a one-line error at start, and blob URLs are
presigned locally with the service account's key. No GCS emulator speaks the API obstore uses (the upstream
fake-gcs-server refuses its XML-API uploads), so nothing here reaches a store: see docs/scale-out.md."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import obstore
import pytest

from dockyard.server.storage.factory import is_object_storage
from dockyard.server.storage.objects import ObjectLocation, open_object_store, parse_object_url
from tests.support.peers import require_program
from tests.support.servers import subprocess_env

GOOGLE = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH",
          "GOOGLE_SERVICE_ACCOUNT_KEY")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No Google credentials from this machine (variables, gcloud's default file under HOME), plus ``extra``."""
    env = {k: v for k, v in subprocess_env().items() if k not in GOOGLE}
    return env | {"HOME": str(tmp_path / "home")} | extra


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(tmp_path / "data"), "--port", "0",
         "--storage-url", "gs://registry-bucket/prefix"],
        capture_output=True, text=True, env=env, timeout=60,
    )


def _service_account(path: Path) -> Path:
    """A service account key file with a new RSA key (made by ``openssl``, as Google's are PKCS#8 PEM)."""
    pem = subprocess.run([require_program("openssl", "openssl"), "genpkey", "-algorithm", "RSA", "-pkeyopt",
                          "rsa_keygen_bits:2048"], check=True, capture_output=True, text=True).stdout
    path.write_text(json.dumps({"type": "service_account", "project_id": "test", "private_key_id": "k1",
                                "private_key": pem, "client_email": "registry@test.iam.gserviceaccount.com"}))
    return path


def test_gs_urls_are_object_storage() -> None:
    assert is_object_storage("gs://bucket/some/prefix")
    assert parse_object_url("gs://bucket/some/prefix/") == ObjectLocation("gs", "bucket", "some/prefix")


def test_serve_without_google_credentials_is_a_one_line_error(tmp_path: Path) -> None:
    result = _serve(tmp_path, _env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --storage-url: gs://registry-bucket needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS "
        "to a service account key file (or GOOGLE_SERVICE_ACCOUNT_KEY to the key's JSON)")


@pytest.mark.parametrize("content", [None, "{}", "not json"], ids=["missing", "no-key", "garbage"])
def test_serve_with_an_unusable_key_file_is_a_one_line_error(tmp_path: Path, content: str | None) -> None:
    key = tmp_path / "key.json"
    if content is not None:
        key.write_text(content)
    result = _serve(tmp_path, _env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(key)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --storage-url: cannot use gs://registry-bucket: "), lines
    assert "Traceback" not in result.stderr


def test_blob_urls_are_presigned_with_the_service_account_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in GOOGLE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path / "key.json")))
    store = open_object_store(parse_object_url("gs://registry-bucket/prefix"))
    url = urlsplit(obstore.sign(store, "GET", "blobs/sha256/ab/abcd", timedelta(minutes=5)))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "storage.googleapis.com",
                                                  "/registry-bucket/prefix/blobs/sha256/ab/abcd")
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["300"]
    assert query["X-Goog-Credential"][0].startswith("registry@test.iam.gserviceaccount.com/")
    assert len(query["X-Goog-Signature"][0]) == 512  # an RSA-2048 signature, hex
