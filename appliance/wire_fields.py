"""The wire model's building blocks: a shape is a tuple of :class:`Field`, each a name, its
JSON Schema and how to read it from the record; :func:`render` makes the JSON of a record,
:func:`schema` the JSON Schema of a shape. The shapes are in :mod:`appliance.wire` (a
session and its timeline) and :mod:`appliance.wire_controls` (the proxy's controls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    schema: Json
    #: How to read it from the record (None: the record's attribute of the same name).
    get: Callable[[Any], Any] | None = None
    required: bool = True


def render(shape: tuple[Field, ...], record: Any) -> Json:
    return {f.name: getattr(record, f.name) if f.get is None else f.get(record)
            for f in shape}


def schema(shape: tuple[Field, ...], *, description: str = "") -> Json:
    out: Json = {"type": "object",
                 "required": [f.name for f in shape if f.required],
                 "properties": {f.name: f.schema for f in shape},
                 "additionalProperties": False}
    if description:
        out["description"] = description
    return out


STR: Json = {"type": "string"}
OPT_STR: Json = {"type": ["string", "null"]}
INT: Json = {"type": "integer"}
BOOL: Json = {"type": "boolean"}
NUM: Json = {"type": "number"}
OPT_INT: Json = {"type": ["integer", "null"]}
OPT_NUM: Json = {"type": ["number", "null"]}


def enum_of(kind: type[StrEnum], *, nullable: bool = False) -> Json:
    values: list[Any] = [str(v) for v in kind]
    if nullable:
        return {"type": ["string", "null"], "enum": [*values, None]}
    return {"type": "string", "enum": values}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
