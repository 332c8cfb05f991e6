"""``/healthz`` (the process answers), ``/readyz`` (its stores can serve) and ``/metrics`` (Prometheus text).

Who may call them is in :data:`.access.ROUTE_ACCESS` like every other route: the health checks are public, and
``/metrics`` is public or needs an administrator depending on ``--metrics-auth`` (two table entries; the app
picks one).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..gc import COMMAND, SCHEDULED, GcRun
from ..metrics import CONTENT_TYPE, Metrics, StorageSnapshot
from .access import route
from .common import json_response, registry


async def healthz(request: Request) -> Response:
    """200 ``{"status": "ok"}`` while the process serves requests."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 when metadata and blob storage can serve; else 503 naming what is down (OCI error body)."""
    problems = await registry(request).unavailable()
    if not problems:
        return json_response({"status": "ok"})
    errors = [{"code": "UNAVAILABLE", "message": f"{what} storage is not available", "detail": {what: why}}
              for what, why in problems.items()]
    return json_response({"status": "unavailable", "errors": errors}, status=503)


async def metrics(request: Request) -> Response:
    """The Prometheus text format: the request counters of every worker, and storage figures read now."""
    reg = registry(request)
    blobs, size = await reg.blob_usage()
    runs = {kind: GcRun.of(*last) for kind, last in (await reg.last_gc_runs((COMMAND, SCHEDULED))).items()}
    snapshot = StorageSnapshot(blobs=blobs, bytes=size, uploads=await reg.open_uploads(),
                               gc_command=runs.get(COMMAND), gc_scheduled=runs.get(SCHEDULED))
    collected: Metrics = request.app.state.metrics
    body = await asyncio.to_thread(collected.render, snapshot)
    return Response(body, media_type=CONTENT_TYPE)


def routes(*, metrics_enabled: bool, metrics_auth: bool) -> list[Route]:
    """The health routes, and ``/metrics`` unless disabled (public, or for administrators with ``metrics_auth``)."""
    found = [
        route("/healthz", healthz, "health.live", ["GET"]),
        route("/readyz", readyz, "health.ready", ["GET"]),
    ]
    if metrics_enabled:
        found.append(route("/metrics", metrics, "metrics.admin" if metrics_auth else "metrics.open", ["GET"]))
    return found
