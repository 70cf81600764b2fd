"""``python -m api.openapi_dump [PATH]``: write the OpenAPI document, for the web UI's build.

The browser app's TypeScript types are generated from the document the API serves at
``/api/openapi.json``. The build must work offline (Nix builds the web UI from ``api/web``
alone), so the document is dumped to ``api/web/openapi.json`` and committed, and
``npm run types`` turns it into ``api/web/src/generated/openapi.ts`` (committed too). A unit
test dumps it again, regenerates the types and fails on any difference.

The app is built exactly as the service builds it (:func:`api.app.create_app`), on a store
in a temporary folder and with no backend: only its routes and their docs are read.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from api.app import create_app
from api.context import ApiContext
from api.events import EventHub
from api.openapi import document
from appliance.audit_index import AuditIndex
from appliance.config import Settings
from appliance.store import AsyncStore, Store


def build() -> dict[str, Any]:
    """The document of the app the service runs."""
    with tempfile.TemporaryDirectory(prefix="clauderon-openapi-") as tmp:
        settings = Settings(home=Path(tmp))
        settings.ensure_layout()
        sync = Store.open(settings.db_path)
        try:
            store = AsyncStore(sync)
            app = create_app(ApiContext(settings=settings, store=store, backends={},
                                        hub=EventHub(store), instance_key=bytes(32),
                                        audit=AuditIndex(settings.audit_path)))
            return document(app)
        finally:
            sync.close()


def text() -> str:
    """The document as the committed file holds it: stable order, two-space indents."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m api.openapi_dump [PATH]  (default: standard output)",
              file=sys.stderr)
        return 2
    out = text()
    if args:
        Path(args[0]).write_text(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
