"""Operations routes: the credentials doctor (``GET /api/credentials``) and ``GET /metrics``.

Both only read: what the proxy published about the credentials it loaded (names, sources,
masked values: ``appliance.credentials.doctor``), and every service's metrics
(``appliance.metrics``). Like every route over TCP they need sign-in or a bearer token
(``api/request_policy.py`` names ``/metrics``, which lives outside ``/api``); the Unix
socket is trusted.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from api.context import current
from api.openapi import RouteDoc, documented, ok
from appliance import controlstore, wire_controls
from appliance.credentials import doctor
from appliance.metrics.collect import exposition
from appliance.wire_fields import render

blueprint = Blueprint("operations", __name__)

CREDENTIALS = {"$ref": "#/components/schemas/Credentials"}


@blueprint.get("/api/credentials")
@documented(RouteDoc(summary="The credentials the proxy loaded (names, sources, masked values "
                             "only) and which agents can work with them",
                     responses={"200": ok(CREDENTIALS)}))
async def credentials() -> dict[str, Any]:
    ctx = current()
    raw = await ctx.store.run(controlstore.read_meta, ctx.store.sync, doctor.META_KEY)
    return render(wire_controls.CREDENTIALS, doctor.report(raw))


@blueprint.get("/metrics")
@documented(RouteDoc(summary="Prometheus metrics of the four services (text exposition "
                             "format)",
                     responses={"200": {"description": "OK", "content": {
                         "text/plain": {"schema": {"type": "string"}}}}}))
async def metrics() -> Response:
    ctx = current()
    ctx.metrics.read_at.labels(service="api").set_to_current_time()
    body, content_type = await ctx.store.run(exposition, ctx.store.sync, ctx.metrics.registry)
    return Response(body, status=200, content_type=content_type)
