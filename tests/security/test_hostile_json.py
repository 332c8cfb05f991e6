"""Hostile JSON bodies get a 400 with an OCI error body, never a 500, and change nothing.

Python's ``json`` raises ``RecursionError`` on deep nesting and ``ValueError`` on integers of more than 4,300
digits; SQLite raises ``OverflowError`` on integers past 2**63. The server parses every JSON body it reads with
one bounded, strict parser and refuses NaN, lone surrogates and JSON that is not UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from dockyard.oci import mediatypes as mt
from tests.conftest import unique
from tests.server.test_bad_input import Seed, assert_error, unchanged
from tests.support.images import make_image, push, upload_blob
from tests.support.servers import DockyardServer


@pytest.fixture(scope="module")
def seed(dockyard_server: DockyardServer) -> Seed:
    repo = unique("hostile/json")
    image = make_image(seed=repo, layers=2, layer_size=500)
    push(image, dockyard_server.url, repo, tag="v1")
    return Seed(dockyard_server, repo, image)


@pytest.fixture
def http(seed: Seed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=seed.server.url, timeout=30.0) as client:
        yield client


def _manifest_text(seed: Seed) -> str:
    """The seed's manifest as text with a placeholder the cases fill in: ``"layers": [...]`` is left intact."""
    return seed.image.body.decode()


def _with_field(seed: Seed, raw_value: str) -> bytes:
    """The seed manifest with one extra top-level field whose JSON text is ``raw_value`` (not re-encoded)."""
    text = _manifest_text(seed)
    assert text.endswith("}")
    return (text[:-1] + f', "x-extra": {raw_value}}}').encode()


def _with_layer_sizes(seed: Seed, *sizes: str) -> bytes:
    """The seed manifest with its layers' sizes replaced by the given JSON number texts."""
    document = seed.image.json
    layers = document["layers"]
    marks = []
    for i, layer in enumerate(layers[: len(sizes)]):
        layer["size"] = f"@SIZE{i}@"
        marks.append(i)
    text = json.dumps(document)
    for i in marks:
        text = text.replace(f'"@SIZE{i}@"', sizes[i])
    return text.encode()


CASES = {
    # 100,000 levels of arrays inside a valid manifest: RecursionError in json.loads.
    "nesting-100k": lambda seed: _with_field(seed, "[" * 100_000 + "]" * 100_000),
    # A 5,000-digit integer: Python refuses to convert it (ValueError, not a JSON error).
    "integer-5000-digits": lambda seed: _with_field(seed, "1" * 5000),
    "layer-size-2-pow-70": lambda seed: _with_layer_sizes(seed, str(2**70)),
    "layer-size-5000-digits": lambda seed: _with_layer_sizes(seed, "9" * 5000),
    "nan": lambda seed: _with_field(seed, "NaN"),
    "infinity": lambda seed: _with_field(seed, "-Infinity"),
    "float-overflow": lambda seed: _with_field(seed, "1e999"),
    "lone-surrogate": lambda seed: _with_field(seed, '"\\ud800"'),
    "lone-surrogate-key": lambda seed: _with_field(seed, '{"\\udfff": "x"}'),
    "utf-16": lambda seed: seed.image.body.decode().encode("utf-16"),
    "utf-32": lambda seed: seed.image.body.decode().encode("utf-32"),
    "latin-1-byte": lambda seed: _with_field(seed, '"caf\xe9"').replace("é".encode(), b"\xe9"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_manifest_is_refused(seed: Seed, http: httpx.Client, case: str) -> None:
    body = CASES[case](seed)
    with unchanged(seed):
        for reference in ("v1", "hostile"):
            response = http.put(f"/v2/{seed.repo}/manifests/{reference}", content=body,
                                headers={"Content-Type": mt.OCI_MANIFEST})
            assert_error(response, 400, "MANIFEST_INVALID")


def test_layer_sizes_summing_past_2_pow_63(seed: Seed, http: httpx.Client) -> None:
    """Each size fits 64 bits, their sum does not (the image size column would overflow)."""
    body = _with_layer_sizes(seed, str(2**62), str(2**62 + 1))
    with unchanged(seed):
        response = http.put(f"/v2/{seed.repo}/manifests/overflow", content=body,
                            headers={"Content-Type": mt.OCI_MANIFEST})
        assert_error(response, 400, "MANIFEST_INVALID")


def test_largest_sizes_that_fit_are_accepted(seed: Seed, http: httpx.Client) -> None:
    """The boundary of the test above from below: sizes up to 2**63 - 1 in total are stored and served back."""
    repo = unique("hostile/fits")
    for blob in seed.image.blobs:
        upload_blob(http, seed.server.url, repo, blob.data)
    body = _with_layer_sizes(seed, str(2**62), str(2**62 - 10_000))
    response = http.put(f"/v2/{repo}/manifests/big", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert http.get(f"/v2/{repo}/manifests/big").content == body


def test_nesting_at_the_limit_is_accepted(seed: Seed, http: httpx.Client) -> None:
    repo = unique("hostile/nest")
    push(seed.image, seed.server.url, repo)
    body = _with_field(seed, "[" * 63 + "]" * 63)  # 64 levels with the manifest object itself
    response = http.put(f"/v2/{repo}/manifests/deep", content=body, headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 201, response.text
    too_deep = _with_field(seed, "[" * 64 + "]" * 64)
    response = http.put(f"/v2/{repo}/manifests/deeper", content=too_deep, headers={"Content-Type": mt.OCI_MANIFEST})
    assert_error(response, 400, "MANIFEST_INVALID")


ACR_PATCH_BODIES = {
    "nesting-30k": b"[" * 30_000 + b"]" * 30_000,
    "nested-in-object": b'{"writeEnabled": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    "integer-5000-digits": b'{"writeEnabled": ' + b"1" * 5000 + b"}",
    "nan": b'{"writeEnabled": NaN}',
    "lone-surrogate": b'{"\\ud800": true}',
    "utf-16": '{"writeEnabled": false}'.encode("utf-16"),
}


@pytest.mark.parametrize("case", sorted(ACR_PATCH_BODIES))
def test_hostile_acr_patch_is_refused(seed: Seed, http: httpx.Client, case: str) -> None:
    body = ACR_PATCH_BODIES[case]
    targets = [f"/acr/v1/{seed.repo}", f"/acr/v1/{seed.repo}/_tags/v1", f"/acr/v1/{seed.repo}/_manifests/v1"]
    with unchanged(seed):
        for target in targets:
            response = http.patch(target, content=body, headers={"Content-Type": "application/json"})
            assert_error(response, 400, None)
    for target in targets:
        attributes = http.get(target).json()
        found = attributes.get("changeableAttributes") or next(
            v["changeableAttributes"] for v in attributes.values() if isinstance(v, dict)
        )
        assert found["writeEnabled"] is True
