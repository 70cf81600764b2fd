"""Request bodies and numbers from the outside, parsed strictly: 400 naming the problem,
never 500.

``parse_json`` is the one JSON reader of the API (routes call :func:`json_body`): the body
must be declared ``application/json`` (415 otherwise: a page can send ``text/plain`` or a
form cross-origin without asking, never JSON), be UTF-8, nest at most :data:`MAX_DEPTH`
deep (Python's parser would otherwise hit its recursion limit), and hold no number it cannot
use (integers past 64 bits, ``NaN``, ``Infinity``, floats that overflow).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from enum import StrEnum
from typing import Any, TypeVar

from quart import request

from api.request_policy import media_type, not_json
from appliance.errors import InvalidInput
from appliance.onekey import once

MAX_DEPTH = 32
MAX_INT_DIGITS = 19
INT64 = 2**63 - 1
E = TypeVar("E", bound=StrEnum)


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS or abs(int(text)) > INT64:
        raise InvalidInput(f"the number {text[:30]}{'...' if len(text) > 30 else ''} is too "
                           "large (integers fit in 64 bits)")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(f"the number {text[:30]} is out of range")
    return value


def _constant(text: str) -> Any:
    raise InvalidInput(f"{text} is not JSON: send numbers as finite decimals")


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(raw: bytes, content_type: str | None) -> Any:
    if media_type(content_type) != "application/json":
        raise not_json(content_type)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not valid UTF-8 (byte {exc.start})") from None
    if _depth(text) > MAX_DEPTH:
        raise InvalidInput(f"the JSON body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                          object_pairs_hook=once)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}") from None
    except ValueError as exc:  # int() past its digit limit, a lone surrogate...
        raise InvalidInput(f"the body is not usable JSON: {exc}") from None


async def json_body(known: Collection[str] | None = None) -> dict[str, Any]:
    """The request's body as a JSON object (see :func:`parse_json`); with ``known``, a key
    that is not one of them is refused, naming it (a typo must not be silently dropped)."""
    raw = await request.get_data(cache=True, as_text=False)
    body = parse_json(raw if isinstance(raw, bytes) else raw.encode(),
                      request.headers.get("Content-Type"))
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    if known is not None:
        unknown = sorted(str(k) for k in body if k not in known)
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0][:100]!r} (known: "
                               f"{', '.join(sorted(known))})", field=unknown[0][:100])
    return body


def choice(body: dict[str, Any], key: str, kind: type[E], default: str | None = None) -> E:
    """``body[key]`` as one of ``kind``'s values (400 naming them otherwise)."""
    try:
        return kind(str(body.get(key, default)))
    except ValueError:
        raise InvalidInput(f"{key} must be {' or '.join(kind)}", field=key) from None


def int_param(raw: str | None, name: str, *, default: int, low: int = 0,
              high: int = INT64) -> int:
    """A query parameter that must be a whole number in ``[low, high]``."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > MAX_INT_DIGITS + 1 \
            or not low <= int(text) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", field=name)
    return int(text)
