"""The server's JSON responses: orjson's compact encoding, the standard library where orjson refuses."""

from __future__ import annotations

import json

from dockyard.server.api.common import json_bytes


def test_listing_body_round_trips() -> None:
    body = {
        "registry": "127.0.0.1:5000",
        "imageName": "team/app",
        "tags": [{"name": f"t{i}", "signed": False, "size": i * 1024, "note": "caf\u00e9\u2603"} for i in range(50)],
    }
    encoded = json_bytes(body)
    assert json.loads(encoded) == body
    assert b" " not in encoded  # compact: no spaces after separators


def test_what_orjson_refuses_is_encoded_by_the_standard_library() -> None:
    huge = {"size": 2**70, 7: "non-string key"}
    assert json_bytes(huge) == json.dumps(huge, separators=(",", ":")).encode()
    assert json.loads(json_bytes(huge)) == {"size": 2**70, "7": "non-string key"}
