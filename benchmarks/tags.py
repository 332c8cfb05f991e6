"""B4: list every tag of a repository with its properties, auth on, Entra-ID-style stand-in credential.

``dockyard serve --htpasswd F --accept-any-aad-token`` plays ACR: the stand-in credential's token is exchanged at
``/oauth2/exchange`` for a refresh token, then for access tokens. Both clients page with their own defaults.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from tests.support.servers import write_htpasswd

from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, Stopwatch, run_python_client
from benchmarks.seed import http_client, put_manifest, small_image
from benchmarks.tools import AZURE, DOCKYARD_SDK

USER = ("bench", "bench-pass")
REPO = "bench/tags"
#: Tag pushes in flight while seeding (setup only, not measured).
SEED_THREADS = 4


class StandInToken(NamedTuple):
    """What ``TokenCredential.get_token`` returns: a token and its expiry (Unix seconds)."""

    token: str
    expires_on: int


class StandInCredential:
    """An Entra ID credential stand-in: any non-empty token is accepted by ``--accept-any-aad-token``."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> StandInToken:
        self.calls += 1
        return StandInToken("stand-in-entra-token", int(time.time()) + 3600)


def _walk(pager: Any) -> int:
    count = 0
    for tag in pager:
        # Touch the properties a caller would read.
        _ = (tag.name, tag.digest, tag.last_updated_on, tag.can_delete)
        count += 1
    return count


def list_dockyard(url: str, repo: str) -> dict[str, Any]:
    from dockyard import ContainerRegistryClient

    credential = StandInCredential()
    client = ContainerRegistryClient(url, credential)
    with Stopwatch() as sw:
        count = _walk(client.list_tag_properties(repo))
    client.close()
    return {"seconds": sw.seconds, "count": count, "get_token_calls": credential.calls}


def list_azure(url: str, repo: str) -> dict[str, Any]:
    from azure.containerregistry import ContainerRegistryClient

    credential = StandInCredential()
    client = ContainerRegistryClient(url, credential)
    with Stopwatch() as sw:
        count = _walk(client.list_tag_properties(repo, enforce_https=False))
    client.close()
    return {"seconds": sw.seconds, "count": count, "get_token_calls": credential.calls}


_CLIENTS = {DOCKYARD_SDK: "list_dockyard", AZURE: "list_azure"}


def missing() -> str | None:
    """B4 runs whenever the server starts; each client fails on its own."""
    return None


def _seed_tags(url: str, count: int) -> None:
    with http_client(url, USER) as http:
        manifest, _, _ = small_image(http, REPO)

        def push(i: int) -> None:
            put_manifest(http, REPO, f"t{i:05d}", manifest)

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(push, range(count)))


def _count_lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def run_b4(ctx: Context) -> None:
    count = ctx.settings.tag_count
    htpasswd = write_htpasswd(ctx.fresh_dir("auth") / "htpasswd", {USER[0]: USER[1]})
    access_log = ctx.fresh_dir("access") / "access.jsonl"
    rows = [ctx.row("B4", f"list {count:,} tags with properties (auth on)", tool, server_label("dockyard"),
                    dockyard=tool == DOCKYARD_SDK) for tool in _CLIENTS]
    flags = ["--htpasswd", str(htpasswd), "--accept-any-aad-token"]
    if ctx.serve_supports("--access-log"):
        flags += ["--access-log", str(access_log)]
    with ctx.server("dockyard", *flags) as server:
        _seed_tags(server.url, count)
        for row in ctx.rotations(rows):
            ctx.reset_server_peak(server)
            before = _count_lines(access_log)
            try:
                run = run_python_client(f"benchmarks.tags:{_CLIENTS[row.tool]}", ctx.logdir,
                                        timeout=ctx.settings.timeout, url=server.url, repo=REPO)
            except RunFailed as exc:
                row.fail(str(exc))
                continue
            if run.extra.get("count") != count:
                row.fail(f"listed {run.extra.get('count')} tags, expected {count}")
                continue
            requests = _count_lines(access_log) - before if access_log.exists() else "?"
            note = f"{requests} HTTP requests, {run.extra.get('get_token_calls')} get_token calls per listing"
            if note not in row.notes:
                row.notes.append(note)
            row.add(run.seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(server))
