"""Resource limits as people write them: ``2``, ``500m`` CPUs; ``512m``, ``4Gi`` memory (pure)."""

from __future__ import annotations

from appliance.errors import InvalidInput

_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_memory(text: str) -> int:
    """``512m``, ``2g``, ``1.5Gi``, ``1073741824`` -> bytes (Docker's and Kubernetes' forms)."""
    raw = text.strip().lower()
    for suffix in ("ib", "i", "b"):
        if raw.endswith(suffix) and len(raw) > len(suffix):
            raw = raw[: -len(suffix)]
            break
    unit = raw[-1] if raw and raw[-1].isalpha() else ""
    try:
        value = float(raw[:-1] if unit else raw)
    except ValueError:
        value = -1.0
    if unit not in _MEMORY_UNITS or not 0 < value < float("inf"):
        raise InvalidInput(f"memory {text!r} is not a size like 512m, 2g or 4Gi", field="memory")
    size = int(value * _MEMORY_UNITS[unit])
    if size < 6 * 1024**2:
        raise InvalidInput(f"memory {text!r} is below Docker's minimum of 6m", field="memory")
    return size


def parse_cpu(raw: object) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        text = str(raw).strip()
        value = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 512:
        raise InvalidInput(f"cpu {raw!r} is not a positive number of CPUs like 1.5 or 500m",
                           field="cpu")
    return value
