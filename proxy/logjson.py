"""One JSON object per log line, for supervisord's log files and the shipper.

Configured once in ``__main__.main()``. Fields: ts, level, logger, msg, plus the ``extra``
keys the proxy passes (``session``, ``request_id``). Messages are built from %-style
arguments by the code that logs them; no header value or credential is ever an argument.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

_EXTRA_KEYS = ("session", "request_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _EXTRA_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
