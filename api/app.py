"""The Quart-trio application: the blueprints, the one error mapping, the hub's task.

``create_app`` registers each concern's blueprint and keeps the :class:`ApiContext` where
the routes find it (:func:`api.context.current`); errors from the core become JSON in
exactly one place (:func:`_on_error`). The hub's tailer runs in the app's own nursery for as
long as the app is served.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from quart import Response, request
from quart.globals import request_ctx
from quart_trio import QuartTrio

from api import (
    console,
    conversation,
    drift,
    egress_routes,
    events_socket,
    file_routes,
    health,
    hook_events,
    openapi,
    operations,
    pull_routes,
    recovery,
    repo_routes,
    session_routes,
    signin_routes,
    timeline_routes,
    usage_routes,
    webui,
)
from api.context import EXTENSION, ApiContext
from appliance.errors import ClauderonError, NotFound

log = logging.getLogger(__name__)

BLUEPRINTS = (session_routes, conversation, console, file_routes, repo_routes, drift,
              hook_events, health, events_socket, signin_routes, openapi, usage_routes,
              egress_routes, operations, timeline_routes, pull_routes, recovery)


class _App(QuartTrio):
    async def make_default_options_response(self) -> Response:
        """An OPTIONS request: 204 with the methods the path takes in ``Allow``, and no body
        to type (Quart's own was an empty ``text/html`` page). Never a CORS answer: no
        ``Access-Control-Allow-*`` (the guard strips any, and refuses a page of another
        origin before this)."""
        adapter = request_ctx.url_adapter
        allowed = ", ".join(sorted(adapter.allowed_methods() if adapter else ()))
        response = self.response_class(b"", status=204, headers={"Allow": allowed})
        for header in ("Content-Type", "Content-Length"):  # a 204 has no body to describe
            del response.headers[header]
        return response


def create_app(ctx: ApiContext) -> QuartTrio:
    app = _App("clauderon", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = ctx

    @app.errorhandler(ClauderonError)
    async def _on_error(exc: ClauderonError) -> tuple[dict[str, Any], int]:
        if exc.http_status >= 500:
            log.warning("%s %s", type(exc).__name__, exc.message)
        return exc.to_json(), exc.http_status

    @app.errorhandler(404)
    async def _not_found(_exc: Exception) -> tuple[dict[str, Any], int]:
        return NotFound(f"no route {request.method} {request.path}").to_json(), 404

    @app.errorhandler(405)
    async def _wrong_method(exc: Exception) -> tuple[dict[str, Any], int, dict[str, str]]:
        # Werkzeug's own page is HTML; a client of the API reads JSON and the methods it may use.
        allowed = ", ".join(getattr(exc, "valid_methods", None) or ())
        body = {"error": f"{request.method} is not answered at {request.path}; it takes "
                         f"{allowed}", "code": "method_not_allowed"}
        return body, 405, {"Allow": allowed}

    @app.after_request
    async def _no_store(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.before_serving
    async def _start_hub() -> None:
        await app.nursery.start(ctx.hub.serve)
        for backend in ctx.backends.values():  # a diff's hold a crash left (docker_freeze)
            try:
                await backend.thaw()
            except ClauderonError as exc:
                log.warning("could not let go of held sessions on %s: %s", backend.kind,
                            exc.message)

    for module in BLUEPRINTS:
        app.register_blueprint(module.blueprint)
    app.register_blueprint(webui.blueprint)  # last: its catch-all must not shadow a route
    # The terminal's frames skip Quart's dispatch (a keystroke's echo is latency-bound); the
    # listeners' layers wrap the app object, so they still run first on every path.
    app.asgi_app = cast(Any, console.lean(ctx, cast(Any, app.asgi_app)))  # type: ignore[method-assign]
    return app
