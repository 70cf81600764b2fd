"""The Quart-trio application: routes, the one error mapping, the event hub's task.

``create_app`` wires the routes to an :class:`ApiContext`; errors from the core become JSON
in exactly one place (:func:`_on_error`). The hub's tailer runs in the app's own nursery for
as long as the app is served.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Response
from quart_trio import QuartTrio

from api import console, files, misc, sessions, signin, transcript, webui
from api.context import ApiContext
from appliance.errors import ClauderonError

log = logging.getLogger(__name__)


def create_app(ctx: ApiContext) -> QuartTrio:
    app = QuartTrio("clauderon", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["clauderon"] = ctx

    @app.errorhandler(ClauderonError)
    async def _on_error(exc: ClauderonError) -> tuple[dict[str, Any], int]:
        if exc.http_status >= 500:
            log.warning("%s %s", type(exc).__name__, exc.message)
        return exc.to_json(), exc.http_status

    @app.after_request
    async def _no_store(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.before_serving
    async def _start_hub() -> None:
        await app.nursery.start(ctx.hub.serve)

    sessions.register(app, ctx)
    misc.register(app, ctx)
    transcript.register(app, ctx)
    console.register(app, ctx)
    files.register(app, ctx)
    signin.register(app, ctx)
    webui.register(app)  # last: its catch-all must not shadow an API route
    return app
