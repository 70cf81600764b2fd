"""The console's WebSocket frames (pure): what a viewer sends, what the terminal answers.

``api/console.py`` is the I/O shell around these. A frame from the viewer is JSON text
(``{"type": "input", "data": <base64>}`` or ``{"type": "resize", "rows": R, "cols": C}``)
or binary (raw input, at most :data:`MAX_FRAME` bytes kept); anything else is a
``ValueError`` the shell logs and skips, so a bad frame never ends the terminal.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from appliance.errors import InvalidInput

MAX_FRAME = 1024 * 1024
MIN_SIZE, MAX_SIZE = 2, 1000


def size(raw: Any, default: int) -> int:
    """A terminal dimension, clamped to [MIN_SIZE, MAX_SIZE]."""
    try:
        value = int(raw) if raw is not None else default
    except (TypeError, ValueError):
        raise InvalidInput("rows and cols must be integers") from None
    return max(MIN_SIZE, min(MAX_SIZE, value))


def parse_frame(frame: str | bytes) -> tuple[str, Any]:
    """``("input", bytes)``, ``("resize", (rows, cols))`` or ``("ignore", None)`` (an unknown
    type: a newer client's frame); ``ValueError`` for a frame that is not one."""
    if isinstance(frame, bytes):
        return "input", frame[:MAX_FRAME]
    try:
        msg = json.loads(frame)
        kind = msg.get("type")
        if kind == "input":
            return "input", base64.b64decode(msg.get("data", ""), validate=True)
        if kind == "resize":
            return "resize", (size(msg.get("rows"), 24), size(msg.get("cols"), 80))
    except (AttributeError, TypeError, binascii.Error, InvalidInput, RecursionError) as exc:
        raise ValueError(str(exc)) from exc
    return "ignore", None


def output_frame(data: bytes) -> str:
    return f'{{"type":"output","data":"{base64.b64encode(data).decode()}"}}'


def exit_frame() -> str:
    return '{"type":"exit"}'
