"""Why a container is made again, in words true of how it came to lack what it lacks
(``docker_spec.remade_because``): the label written at create says which version made it."""

from __future__ import annotations

import pytest

from appliance.backends.docker_spec import LABEL_MADE_BY, MADE_BY, made_by, remade_because

THIS = "0.2.0 0123456789ab"


@pytest.mark.parametrize(("missing", "made", "said"), [
    (["no privileged mode"], None,
     "made by an older version without this version's containment: no privileged mode"),
    (["no privileged mode", "every capability dropped"], "0.1.0 ba9876543210",
     "made by an older version without this version's containment: no privileged mode; "
     "every capability dropped"),
    (["the network n alone"], THIS,
     "changed after this version made it (a network connected, `docker update`, a plugin): "
     "it lacks the network n alone"),
])
def test_the_reason_says_who_made_the_container(missing: list[str], made: str | None,
                                                said: str) -> None:
    assert remade_because(missing, made, this=THIS) == said


@pytest.mark.parametrize(("labels", "made"), [
    (None, None),
    ({}, None),
    ({LABEL_MADE_BY: ""}, None),
    ({LABEL_MADE_BY: MADE_BY}, MADE_BY),
])
def test_the_label_says_which_version_made_it(labels: dict[str, str] | None,
                                              made: str | None) -> None:
    assert made_by({"Config": {"Labels": labels}}) == made


def test_this_version_names_itself() -> None:
    assert remade_because(["x"], MADE_BY).startswith("changed after this version made it")
