"""Resource limits as people write them: CPU counts and memory sizes."""

from __future__ import annotations

import pytest

from appliance.errors import InvalidInput
from appliance.resources import parse_cpu, parse_memory

GI = 1024**3
MI = 1024**2


@pytest.mark.parametrize(("raw", "cpus"), [
    (2, 2.0), ("2", 2.0), (0.5, 0.5), ("0.5", 0.5), ("500m", 0.5), ("1500m", 1.5),
    (" 1.25 ", 1.25), (512, 512.0),
])
def test_cpu_forms(raw: object, cpus: float) -> None:
    assert parse_cpu(raw) == cpus


@pytest.mark.parametrize("raw", [None, ""])
def test_cpu_absent(raw: object) -> None:
    assert parse_cpu(raw) is None


@pytest.mark.parametrize("raw", [
    0, "0", "0m", -1, "-1", "abc", 1000, "513", "m", "nan", "inf", "2 cpus", True,
])
def test_cpu_rejected(raw: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_cpu(raw)
    assert info.value.field == "cpu"


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 * MI), ("512M", 512 * MI), ("512mb", 512 * MI), ("512Mi", 512 * MI),
    ("2g", 2 * GI), ("4Gi", 4 * GI), ("1.5Gi", int(1.5 * GI)), ("1073741824", GI),
    ("1t", 1024 * GI), ("6m", 6 * MI), ("8192k", 8 * MI),
])
def test_memory_forms(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", [
    "1k", "1m", "5m", "100",  # below Docker's 6m minimum
])
def test_memory_too_small(text: str) -> None:
    with pytest.raises(InvalidInput, match="minimum") as info:
        parse_memory(text)
    assert info.value.field == "memory"


@pytest.mark.parametrize("text", [
    "abc", "", " ", "-1g", "0", "0g", "4x", "g", "Gi", "four gigs", "1e400", "infg", "nang",
    "2gg",
])
def test_memory_rejected(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_memory(text)
    assert info.value.field == "memory"
