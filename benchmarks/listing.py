"""B11: how listings grow, and what a database round trip costs per request — SQLite vs PostgreSQL, same run.

(a) One repository of 1,000,000 tags and 100,000 repositories are written straight into the metadata tables
(:mod:`benchmarks.seed`; seconds, not the hours HTTP would take), then a real ``dockyard serve`` on that database
answers pages of 100 — ``/v2/<repo>/tags/list``, ``/v2/_catalog`` and ``/acr/v1/<repo>/_tags`` in every order —
at the first page, the middle and the last full page of the listing. Each value is the median time of a number
of GETs of that one page over one keep-alive connection (client included); the ratio column of these rows is the
first page's time over this page's time, so ~1.0 means the page costs the same wherever it is (a listing that
scans to its offset would fall far below 1 at the end).

(b) Requests per second for manifest GET, a tag-list page and blob HEAD against the same two servers (the same
seeded databases), and from the two rates the time each request costs the server and, with the database's own
processes counted, its CPU per request: the difference is the price of PostgreSQL's round trips.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer

from benchmarks.backends import PeerMissing, Postgres, postgres
from benchmarks.context import Context
from benchmarks.load import MAX_ERROR_SHARE, loadgen_head, wrk_get
from benchmarks.results import Row
from benchmarks.seed import Seeded, seed
from dockyard.oci.mediatypes import OCI_MANIFEST
from dockyard.server.storage.schema import sqlite_url

BACKENDS = ("SQLite", "PostgreSQL")
PAGE = 100
LOAD_REPO = "bench/load"
LOADGEN = "wrk (GET) / benchmarks.loadgen (HEAD)"
POSITIONS = ("first page", "middle page", "last page")


@dataclass(frozen=True)
class Sizes:
    tags: int
    repositories: int
    gets_per_page: int


def sizes(mode: str) -> Sizes:
    """Full: what the issue asks for; quick: a smoke test."""
    return Sizes(1_000_000, 100_000, 25) if mode == "full" else Sizes(2_000, 500, 5)


def missing() -> str | None:
    """B11 runs with SQLite alone; the PostgreSQL rows fail with the reason when it is absent."""
    return None


@dataclass
class Backend:
    """A seeded database with a ``dockyard serve`` on it."""

    label: str
    server: DockyardServer
    seeded: Seeded
    seed_seconds: float
    database: Postgres | None = None

    def cpu_seconds(self, ctx: Context) -> float:
        """The server's CPU so far, the database's processes included."""
        own = ctx.server_cpu(self.server)
        return own + (self.database.cpu_seconds() if self.database is not None else 0.0)


@dataclass(frozen=True)
class Listing:
    """One listing endpoint: its path, extra query, what it counts, and the ``last`` cursor at position ``k``."""

    name: str
    path: str
    query: dict[str, str]
    field: str
    count: Callable[[Seeded], int]
    cursor: Callable[[Seeded, int], str]


def _tag(s: Seeded, k: int) -> str:
    return s.tag_name(k)


def _time_asc(s: Seeded, k: int) -> str:
    return s.tag_at_time_rank(k)


def _time_desc(s: Seeded, k: int) -> str:
    return s.tag_at_time_rank(s.tag_count - 1 - k)


def _tags(s: Seeded) -> int:
    return s.tag_count


def _catalog(s: Seeded, k: int) -> str:
    # Position 0 of the catalog is the tag repository (it sorts first); the many follow.
    return s.tag_repository if k == 0 else s.repository_name(k - 1)


def _catalog_count(s: Seeded) -> int:
    # The tag repository, the many, and the repository the load cases push into (it sorts first of all).
    return s.repository_count + 2


LISTINGS = (
    Listing("GET /v2/<repo>/tags/list", "/v2/{repo}/tags/list", {}, "tags", _tags, _tag),
    Listing("GET /v2/_catalog", "/v2/_catalog", {}, "repositories", _catalog_count,
            lambda s, k: LOAD_REPO if k == 0 else _catalog(s, k - 1)),
    Listing("GET /acr/v1/<repo>/_tags orderby=none", "/acr/v1/{repo}/_tags", {"orderby": "none"}, "tags", _tags,
            _tag),
    Listing("GET /acr/v1/<repo>/_tags orderby=timeasc", "/acr/v1/{repo}/_tags", {"orderby": "timeasc"}, "tags",
            _tags, _time_asc),
    Listing("GET /acr/v1/<repo>/_tags orderby=timedesc", "/acr/v1/{repo}/_tags", {"orderby": "timedesc"}, "tags",
            _tags, _time_desc),
)


def _listing_case(listing: Listing, sizes_: Sizes, backend: str) -> str:
    what = f"{sizes_.repositories:,} repositories" if listing.field == "repositories" else f"{sizes_.tags:,} tags"
    return f"{listing.name} n={PAGE}, {what}, {backend}"


def _server_label(backend: str) -> str:
    return f"dockyard serve + {backend}"


@contextmanager
def _backend(ctx: Context, label: str, sizes_: Sizes) -> Iterator[Backend]:
    image = make_image(layers=1, seed="b11")
    manifest = (image.digest, image.media_type, image.body)
    with ExitStack() as stack:
        database: Postgres | None = None
        if label == "SQLite":
            url = sqlite_url(ctx.fresh_dir("b11-sqlite") / "metadata.db")
        else:
            database = stack.enter_context(postgres())
            url = database.database()
        started = time.monotonic()
        seeded = seed(url, tag_count=sizes_.tags, repository_count=sizes_.repositories, manifest=manifest)
        seconds = time.monotonic() - started
        server = stack.enter_context(ctx.server("dockyard", "--metadata-url", url))
        assert isinstance(server, DockyardServer)
        push(make_image(layers=1, seed="b11-load"), server.url, LOAD_REPO, tag="v1")
        yield Backend(label, server, seeded, seconds, database)


def _page_ms(client: httpx.Client, listing: Listing, seeded: Seeded, position: str, gets: int) -> float:
    """Median milliseconds of ``gets`` GETs of the page at ``position``; checks the page holds :data:`PAGE`."""
    count = listing.count(seeded)
    params = {"n": str(PAGE), **listing.query}
    if position == "middle page":
        params["last"] = listing.cursor(seeded, count // 2)
    elif position == "last page":
        params["last"] = listing.cursor(seeded, count - PAGE - 1)
    path = listing.path.format(repo=seeded.tag_repository)
    times = []
    for _ in range(gets):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    got = len(response.json()[listing.field])
    if got != PAGE:
        raise RuntimeError(f"GET {path} {params} listed {got} entries, expected {PAGE}")
    return statistics.median(times) * 1000


def _load_cases(ctx: Context, seeded: Seeded) -> dict[str, Callable[[str, str], tuple[float, int, int]]]:
    middle = seeded.tag_name(seeded.tag_count // 2)
    return {
        "manifest GET": lambda base, layer: wrk_get(ctx, f"{base}/v2/{LOAD_REPO}/manifests/v1", OCI_MANIFEST),
        f"tag list page (n={PAGE}, middle of {seeded.tag_count:,})": lambda base, layer: wrk_get(
            ctx, f"{base}/v2/{seeded.tag_repository}/tags/list?n={PAGE}&last={middle}", "application/json"),
        "blob HEAD": lambda base, layer: loadgen_head(ctx, f"{base}/v2/{LOAD_REPO}/blobs/{layer}"),
    }


def run_b11(ctx: Context) -> None:
    sizes_ = sizes(ctx.settings.mode)
    conns = ctx.settings.load_connections
    listing_rows = {
        (listing.name, label, position): ctx.row(
            "B11", _listing_case(listing, sizes_, label), position, _server_label(label), unit="ms",
            dockyard=position == POSITIONS[0])
        for label in BACKENDS for listing in LISTINGS for position in POSITIONS
    }
    with ExitStack() as stack:
        backends: dict[str, Backend] = {}
        unavailable: dict[str, str] = {}
        for label in BACKENDS:
            try:
                backends[label] = stack.enter_context(_backend(ctx, label, sizes_))
            except PeerMissing as exc:
                unavailable[label] = str(exc)
                for (_, backend, _), row in listing_rows.items():
                    if backend == label:
                        row.fail(str(exc))
                continue
            found = backends[label]
            for (_, backend, position), row in listing_rows.items():
                if backend == label and position == POSITIONS[0]:
                    row.notes[:] = [f"{label}: seeded {sizes_.tags:,} tags in one repository and "
                                    f"{sizes_.repositories:,} repositories in {found.seed_seconds:.0f} s"]
                    break
        if not backends:
            return
        some = next(iter(backends.values()))
        load_names = list(_load_cases(ctx, some.seeded))
        load_rows = {
            (case, label): ctx.row("B11", f"{case}, {conns} connections, SQLite vs PostgreSQL", LOADGEN,
                                   _server_label(label), unit="req/s", dockyard=label == "SQLite")
            for case in load_names for label in BACKENDS
        }
        for (_, label), row in load_rows.items():
            if label in unavailable:
                row.fail(unavailable[label])
        totals: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for round_ in range(ctx.settings.rounds):
            order = list(backends.values())
            order = order[round_ % len(order):] + order[: round_ % len(order)]
            for backend in order:
                _listing_round(ctx, backend, listing_rows, sizes_, round_)
                _load_round(ctx, backend, load_rows, totals)
        _load_notes(load_rows, totals, conns)


def _listing_round(ctx: Context, backend: Backend, rows: dict[tuple[str, str, str], Row], sizes_: Sizes,
                   round_: int) -> None:
    with httpx.Client(base_url=backend.server.url, timeout=60) as client:
        for listing in LISTINGS:
            positions = POSITIONS[round_ % 3:] + POSITIONS[: round_ % 3]
            for position in positions:
                row = rows[(listing.name, backend.label, position)]
                if row.status != "ok":
                    continue
                try:
                    row.add(_page_ms(client, listing, backend.seeded, position, sizes_.gets_per_page))
                except (RuntimeError, httpx.HTTPError) as exc:
                    row.fail(str(exc))


def _load_round(ctx: Context, backend: Backend, rows: dict[tuple[str, str], Row],
                totals: dict[tuple[str, str], list[tuple[int, float]]]) -> None:
    client = httpx.Client(base_url=backend.server.url, timeout=30)
    with client:
        manifest = client.get(f"/v2/{LOAD_REPO}/manifests/v1", headers={"Accept": OCI_MANIFEST}).json()
    layer = manifest["layers"][0]["digest"]
    for case, load in _load_cases(ctx, backend.seeded).items():
        row = rows[(case, backend.label)]
        if row.status != "ok":
            continue
        cpu = backend.cpu_seconds(ctx)
        try:
            rate, total, bad = load(backend.server.url, layer)
        except (RuntimeError, ValueError, OSError) as exc:
            row.fail(str(exc))
            continue
        if total == 0 or bad / total > MAX_ERROR_SHARE:
            row.fail(f"{bad} of {total} requests failed")
            continue
        used = backend.cpu_seconds(ctx) - cpu
        row.add(rate, server_rss_kib=ctx.server_peak_kib(backend.server), server_cpu=used)
        totals.setdefault((case, backend.label), []).append((total, used))


def _load_notes(rows: dict[tuple[str, str], Row], totals: dict[tuple[str, str], list[tuple[int, float]]],
                conns: int) -> None:
    """Per request: server time (1 / rate), CPU (dockyard + database), and PostgreSQL's extra over SQLite."""
    for (case, label), row in rows.items():
        if label != "PostgreSQL":
            continue
        base = rows.get((case, "SQLite"))
        if base is None or base.median is None or row.median is None:
            continue
        cpu = {name: _cpu_per_request(totals.get((case, name), [])) for name in ("SQLite", "PostgreSQL")}
        sqlite_us, pg_us = 1e6 / base.median, 1e6 / row.median
        row.notes[:] = [
            f"{case}: {sqlite_us:.0f} µs per request on SQLite, {pg_us:.0f} µs on PostgreSQL "
            f"(+{pg_us - sqlite_us:.0f} µs, 1/rate at {conns} connections); CPU per request (dockyard + database) "
            f"{cpu['SQLite']:.0f} vs {cpu['PostgreSQL']:.0f} µs (+{cpu['PostgreSQL'] - cpu['SQLite']:.0f} µs)"
        ]


def _cpu_per_request(runs: list[tuple[int, float]]) -> float:
    """Median over rounds of CPU microseconds per request."""
    return statistics.median(used / total * 1e6 for total, used in runs) if runs else float("nan")
