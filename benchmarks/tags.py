"""B4: list every tag of a repository with its properties, auth on, Entra-ID-style stand-in credential.

``dockyard serve --htpasswd F --accept-any-aad-token`` plays ACR: the stand-in credential's token is exchanged at
``/oauth2/exchange`` for a refresh token, then for access tokens. Two paging variants: the server's default page
and 100 per page (what ACR does by default). Client processes: :mod:`benchmarks.tag_clients`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from tests.support.images import make_image, push, put_manifest
from tests.support.servers import write_htpasswd

from benchmarks.context import Context, server_label
from benchmarks.measure import RunFailed, run_python_client
from benchmarks.tools import AZURE, DOCKYARD_SDK

USER = ("bench", "bench-pass")
REPO = "bench/tags"
#: The paging variants: the server's default page (all tags at once on dockyard serve) and ACR's 100 per page.
PAGINGS: dict[str, int | None] = {"default page size": None, "100 per page": 100}
#: Tag pushes in flight while seeding (setup only, not measured).
SEED_THREADS = 4


_CLIENTS = {DOCKYARD_SDK: "list_dockyard", AZURE: "list_azure"}


def missing() -> str | None:
    """B4 runs whenever the server starts; each client fails on its own."""
    return None


def _seed_tags(url: str, count: int) -> None:
    image = make_image(layers=1, seed="tags")
    with httpx.Client(auth=USER, timeout=60) as http:
        push(image, url, REPO, client=http)

        def tag(i: int) -> None:
            put_manifest(http, url, REPO, image, f"t{i:05d}")

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(tag, range(count)))


def run_b4(ctx: Context) -> None:
    count = ctx.settings.tag_count
    htpasswd = write_htpasswd(ctx.fresh_dir("auth") / "htpasswd", {USER[0]: USER[1]})
    rows = [ctx.row("B4", f"list {count:,} tags with properties (auth on), {label}", tool, server_label("dockyard"),
                    dockyard=tool == DOCKYARD_SDK) for label in PAGINGS for tool in _CLIENTS]
    per_page = {row.case: PAGINGS[row.case.rsplit(", ", 1)[1]] for row in rows}
    flags = ["--htpasswd", str(htpasswd), "--accept-any-aad-token"]
    with ctx.server("dockyard", *flags, access_log=True) as server:
        _seed_tags(server.url, count)
        for row in ctx.rotations(rows):
            ctx.reset_server_peak(server)
            before = ctx.request_count(server)
            cpu = ctx.server_cpu(server)
            try:
                run = run_python_client(f"benchmarks.tag_clients:{_CLIENTS[row.tool]}", ctx.logdir,
                                        timeout=ctx.settings.timeout, url=server.url, repo=REPO,
                                        per_page=per_page[row.case])
            except RunFailed as exc:
                row.fail(str(exc))
                continue
            if run.extra.get("count") != count:
                row.fail(f"listed {run.extra.get('count')} tags, expected {count}")
                continue
            after = ctx.request_count(server)
            requests = "?" if before is None or after is None else after - before
            note = (f"{row.case.rsplit(', ', 1)[1]}: {requests} HTTP requests, "
                    f"{run.extra.get('get_token_calls')} get_token calls per listing")
            if note not in row.notes:
                row.notes.append(note)
            row.add(run.seconds, client_rss_kib=run.peak_rss_kib, server_rss_kib=ctx.server_peak_kib(server),
                    client_cpu=run.cpu_seconds, server_cpu=ctx.server_cpu(server) - cpu)
