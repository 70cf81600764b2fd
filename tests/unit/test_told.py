"""Told (pure): a failing step is told once per reason, again when it changed or succeeded."""

from __future__ import annotations

import pytest

from appliance.reconcile.told import Told

# Each step: ("fail", key, reason) -> whether it is told; ("ok", key) forgets.
CASES: list[tuple[str, list[tuple[str, ...]], list[bool]]] = [
    ("the same failure each pass is told once",
     [("fail", "o1", "refused")] * 4, [True, False, False, False]),
    ("a changed reason is told, and a return to the old one too",
     [("fail", "o1", "refused"), ("fail", "o1", "timeout"), ("fail", "o1", "timeout"),
      ("fail", "o1", "refused")], [True, True, False, True]),
    ("a success in between makes the next failure news",
     [("fail", "o1", "refused"), ("ok", "o1"), ("fail", "o1", "refused")], [True, True]),
    ("each workload is its own",
     [("fail", "o1", "refused"), ("fail", "o2", "refused"), ("fail", "o1", "refused")],
     [True, True, False]),
    ("forgetting one never told is harmless",
     [("ok", "o9"), ("fail", "o9", "refused")], [True]),
]


@pytest.mark.parametrize(("steps", "expected"), [(s, e) for _, s, e in CASES],
                         ids=[name for name, _, _ in CASES])
def test_told(steps: list[tuple[str, ...]], expected: list[bool]) -> None:
    told = Told()
    said: list[bool] = []
    for step in steps:
        if step[0] == "ok":
            told.forget(step[1])
        else:
            said.append(told.due(step[1], step[2]))
    assert said == expected
