"""The create's engine verdict (the engine's answer in, the refusal or none out), and the
appliance's own folders no session is made on."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.admission import appliance_folder, engine_refusal
from appliance.config import Settings
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


@pytest.mark.parametrize(("path", "found"), [
    ("worktrees/nest", ("worktrees/nest", "nest")),
    ("worktrees/nest/sub/..", ("worktrees/nest", "nest")),
    ("worktrees/nest.repos/lib", ("worktrees/nest.repos/lib", "nest")),
    ("homes/x", ("homes/x", None)),
    (".", (".", None)),
    ("../repo", None),
    ("../home-other", None),
    ("relative", None),
])
def test_a_folder_of_the_appliances_own(tmp_path: Path, path: str,
                                        found: tuple[str, str | None] | None) -> None:
    """Where a create's repository lies inside the appliance's folder, and whose
    workspace holds it; None outside (a neighbour whose name begins the same too)."""
    home = tmp_path / "home"
    given = path if path == "relative" else str(home / path)
    got = appliance_folder(given, Settings(home=home))
    assert got == (None if found is None else ((home / found[0]).resolve(), found[1]))
