"""Unit checks of the sans-I/O protocol: parsers, plans, and the auth state machine driven step by step."""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from dockyard.credentials import BasicCredential
from dockyard.errors import ClientAuthenticationError, ResourceNotFoundError
from dockyard.oci.ranges import parse_content_range
from dockyard.oci.scopes import scope_template
from dockyard.protocol.challenge import classify, jwt_expiry, parse_challenge
from dockyard.protocol.download import plan_parts
from dockyard.protocol.instructions import CallCredential, Gen, Request, Sleep
from dockyard.protocol.messages import Response
from dockyard.protocol.responses import error_from_response, next_link
from dockyard.protocol.retry import RetryPolicy, retry_after
from dockyard.protocol.session import Session
from dockyard.protocol.wire import locks_body, parse_time, tag_from_wire


def test_challenge_tolerates_spaces_and_missing_scope() -> None:
    header = 'Bearer realm="https://r.io/oauth2/token", service="r.io", scope="repository:a/b:pull,push"'
    spaced = parse_challenge(header)
    assert spaced is not None
    assert (spaced.realm, spaced.service) == ("https://r.io/oauth2/token", "r.io")
    assert spaced.scope == "repository:a/b:pull,push"
    bare = parse_challenge('Bearer realm="https://r.io/token",service="r.io"')
    assert bare is not None and bare.scope is None and bare.service == "r.io"
    basic = parse_challenge('Basic realm="registry"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("Negotiate abc") is None and parse_challenge(None) is None


def test_classify_and_scope_templates() -> None:
    kind = classify("PATCH", "http://h/v2/a/b/blobs/uploads/123?x=1")
    assert (kind.action, kind.repository) == ("v2:write", "a/b")
    assert classify("GET", "http://h/acr/v1/a%2Fb/_tags/v1").repository == "a/b"
    assert classify("GET", "http://h/acr/v1/_catalog").action == "catalog"
    assert scope_template("repository:a/b:pull", "a/b") == "repository:{repository}:pull"


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_jwt_expiry_uses_urlsafe_base64() -> None:
    # '>>>' and '???' encode to '-' and '_' in URL-safe base64, which standard base64 rejects.
    token = _jwt({"exp": 2_000_000_000, "x": ">>>???"})
    assert jwt_expiry(token) == 2_000_000_000
    assert jwt_expiry("opaque-token") is None


def test_content_range_and_parts() -> None:
    assert parse_content_range("bytes 0-99/1000") == (0, 99, 1000)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    assert parse_content_range("nonsense") is None
    parts = plan_parts(1000, 100, concurrency=2, min_part=100)
    assert parts[0].start == 100 and parts[-1].end == 999
    assert sum(p.size for p in parts) == 900
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(parts))


def test_link_retry_after_and_errors() -> None:
    page = Response(200, {"Link": '</v2/_catalog?last=b&n=2>; rel="next"'}, url="http://h:5000/v2/_catalog?n=2")
    assert next_link(page) == "http://h:5000/v2/_catalog?last=b&n=2"
    assert next_link(Response(200, {}, url="http://h/")) is None
    assert retry_after(Response(429, {"Retry-After": "3"})) == 3.0
    assert RetryPolicy(total=2).delay(0, Response(429, {"Retry-After": "1"})) == 1.0
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
    error = error_from_response(Response(404, {}, body))
    assert isinstance(error, ResourceNotFoundError) and error.error_code == "MANIFEST_UNKNOWN"
    assert error.status_code == 404 and "manifest unknown" in str(error)


def test_wire_models_tolerate_missing_fields() -> None:
    tag = tag_from_wire({"name": "v1", "digest": "sha256:" + "a" * 64}, "repo")
    assert tag.repository_name == "repo" and tag.can_delete is None and tag.created_on is None
    when = parse_time("2018-09-07T16:30:46.6583219Z")
    assert when is not None and when.microsecond == 658321 and when.tzinfo is not None
    assert locks_body(None, {"can_delete": False, "can_write": None}) == {"deleteEnabled": False}


class Script:
    """Drives a protocol generator with canned responses and records what it asked for."""

    def __init__(self, *responses: Response) -> None:
        self.responses = list(responses)
        self.sent: list[Request] = []

    def run(self, gen: Gen[Any], token: str = "aad-token") -> Any:
        value: Any = None
        while True:
            try:
                step = gen.send(value)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Request):
                self.sent.append(Request(step.method, step.url, dict(step.headers), step.body))
                value = self.responses.pop(0)
            elif isinstance(step, CallCredential):
                value = (token, int(time.time()) + 3600)
            elif isinstance(step, Sleep):
                value = None


class Aad:
    def get_token(self, *scopes: str) -> tuple[str, int]:
        return ("aad", int(time.time()) + 3600)


CHALLENGE = {
    "WWW-Authenticate": 'Bearer realm="http://127.0.0.1:9/oauth2/token", service="reg", scope="repository:r:pull"'
}


def test_entra_flow_caches_refresh_and_access_tokens() -> None:
    session = Session("http://127.0.0.1:9", Aad())
    refresh = _jwt({"exp": int(time.time()) + 3 * 3600})
    script = Script(
        Response(401, CHALLENGE, url="http://127.0.0.1:9/v2/r/manifests/v1"),
        Response(200, {}, json.dumps({"refresh_token": refresh}).encode()),
        Response(200, {}, json.dumps({"access_token": "acc-1"}).encode()),
        Response(200, {}, b"{}", url="http://127.0.0.1:9/v2/r/manifests/v1"),
        Response(200, {}, b"{}", url="http://127.0.0.1:9/v2/r/manifests/v2"),
    )
    first = script.run(session.send(Request("GET", "http://127.0.0.1:9/v2/r/manifests/v1")))
    assert first.status == 200
    assert [r.url.split("?")[0].rsplit("/", 2)[-2:] for r in script.sent][1:3] == [["oauth2", "exchange"],
                                                                                 ["oauth2", "token"]]
    assert script.sent[-1].headers["Authorization"] == "Bearer acc-1"
    # Warm: the next request goes out once, with the cached token up front.
    script.sent.clear()
    script.run(session.send(Request("GET", "http://127.0.0.1:9/v2/r/manifests/v2")))
    assert len(script.sent) == 1 and script.sent[0].headers["Authorization"] == "Bearer acc-1"


def test_basic_challenge_and_wrong_password() -> None:
    session = Session("http://127.0.0.1:9", BasicCredential("u", "p"))
    basic = {"WWW-Authenticate": 'Basic realm="registry"'}
    script = Script(Response(401, basic), Response(401, basic))
    response = script.run(session.send(Request("GET", "http://127.0.0.1:9/v2/_catalog")))
    assert response.status == 401 and script.sent[1].headers["Authorization"].startswith("Basic ")


def test_token_service_refusal_is_an_auth_error() -> None:
    session = Session("http://127.0.0.1:9", BasicCredential("u", "bad"))
    script = Script(Response(401, CHALLENGE), Response(401, {}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'))
    with pytest.raises(ClientAuthenticationError):
        script.run(session.send(Request("GET", "http://127.0.0.1:9/v2/r/manifests/v1")))


def test_credentials_stay_off_plain_http_to_other_hosts() -> None:
    session = Session("http://registry.example", BasicCredential("u", "p"))
    script = Script(Response(401, {"WWW-Authenticate": 'Basic realm="x"'}))
    from dockyard.errors import ServiceRequestError

    with pytest.raises(ServiceRequestError, match="allow_insecure_credentials"):
        script.run(session.send(Request("GET", "http://registry.example/v2/_catalog")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-09-07T16:30:46.6583219Z", datetime(2018, 9, 7, 16, 30, 46, 658321, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05.1+02:00", datetime(2024, 1, 2, 1, 4, 5, 100000, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("not a time", None),
        (None, None),
    ],
)
def test_parse_time_reads_acr_timestamps(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("reached", [True, False])
def test_a_read_that_reached_the_registry_waits_out_a_refused_connection(reached: bool) -> None:
    """A part of a file download (or a read that received bytes) whose registry refuses the next connection
    waits and tries again, as after a restart; a registry never reached still fails at once."""
    from dockyard.errors import ServiceRequestError
    from dockyard.protocol.download import BlobReadState, read_blob

    session = Session("http://127.0.0.1:1")
    state = BlobReadState(session, "repo", "sha256:" + "0" * 64, offset=100, end=199, verify=False)
    state.reached = reached
    gen = read_blob(state)
    assert isinstance(next(gen), Request)
    refused = ServiceRequestError("refused", connect_failed=True)
    if not reached:
        with pytest.raises(ServiceRequestError):
            gen.throw(refused)
        return
    for _ in range(5):  # MAX_RESUMES
        assert isinstance(gen.throw(refused), Sleep)
        request = gen.send(None)
        assert isinstance(request, Request) and request.headers["Range"] == "bytes=100-199"
    with pytest.raises(ServiceRequestError):
        gen.throw(refused)
