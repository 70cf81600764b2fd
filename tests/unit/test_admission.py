"""The create's engine verdict: the engine's answer in, the refusal (or none) out."""

from __future__ import annotations

import pytest

from appliance.admission import engine_refusal
from appliance.errors import BackendUnavailable, ClauderonError, InvalidInput

DOWN = "Docker engine not reachable"


@pytest.mark.parametrize(("answer", "kind", "refused", "field", "says"), [
    (True, "docker", None, None, None),
    (False, "docker", InvalidInput, "image", "'agent:1' is not on the Docker engine"),
    (False, "kubernetes", InvalidInput, "image", "is not on the Kubernetes engine"),
    (BackendUnavailable(DOWN), "docker", BackendUnavailable, "backend", DOWN),
    (BackendUnavailable(DOWN, field="image"), "docker", BackendUnavailable, "image", DOWN),
])
def test_engine_refusal(answer: ClauderonError | bool, kind: str,
                        refused: type[ClauderonError] | None, field: str | None,
                        says: str | None) -> None:
    got = engine_refusal(answer, image="agent:1", kind=kind)
    if refused is None:
        assert got is None
        return
    assert type(got) is refused
    assert got.field == field
    assert says is not None and says in got.message
