"""The browser app: the files Vite builds into ``api/static/``, served at ``/``.

Any path that is not a file and does not look like one gets ``index.html``, so the app's own
routes (``/s/<name>/files``) survive a reload. Hashed assets are cached for a year; the
entry page, the manifest and the service worker are revalidated every time so an upgrade
shows on the next load. Registered last: every ``/api`` and ``/ws`` route wins over it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath

import trio
from quart import Blueprint, Response

from api.openapi import RouteDoc, documented
from appliance.errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"
NOT_BUILT = (
    "<!doctype html><meta charset=utf-8><title>Clauderon</title>"
    "<p>The web UI is not built. Run <code>npm ci --prefix api/web &amp;&amp; "
    "npm run --prefix api/web build</code>, then reload. The API works without it.</p>"
)
MIME = {".webmanifest": "application/manifest+json", ".js": "text/javascript",
        ".svg": "image/svg+xml"}


def locate(root: Path, rel: str) -> Path | None:
    """The file ``rel`` names under ``root``, or None (never a path outside ``root``)."""
    parts = PurePosixPath(rel).parts
    if not rel or ".." in parts or rel.startswith("/"):
        return None
    try:
        candidate = (root / rel).resolve()
        if root.resolve() not in candidate.parents or not candidate.is_file():
            return None
    except (OSError, ValueError):  # a name too long, a NUL byte: not one of our files
        return None
    return candidate


async def serve(rel: str, root: Path = STATIC) -> Response:
    found = await trio.to_thread.run_sync(locate, root, rel)
    if found is None:
        # A missing asset is a 404 whatever its name: the app's page under ``assets/`` would
        # be cached for a year as that asset (a page may navigate the person to any name).
        if rel.startswith(("api/", "ws/", "assets/")) or "." in PurePosixPath(rel).name:
            raise NotFound(f"no such file /{rel}")
        found = root / "index.html"
        if not await trio.Path(found).is_file():
            return Response(NOT_BUILT, status=200, mimetype="text/html")
    data = await trio.Path(found).read_bytes()
    response = Response(data, mimetype=MIME.get(found.suffix)
                        or mimetypes.guess_type(found.name)[0] or "application/octet-stream")
    immutable = rel.startswith("assets/")
    response.headers["Cache-Control"] = (
        "public, max-age=31536000, immutable" if immutable else "no-cache")
    return response


blueprint = Blueprint("webui", __name__)


@blueprint.get("/")
@documented(RouteDoc(summary="The web UI"))
async def index() -> Response:
    return await serve("")


@blueprint.get("/<path:rel>")
@documented(RouteDoc(summary="The web UI's files; other paths get the app's page"))
async def asset(rel: str) -> Response:
    return await serve(rel)
