"""The hostile agent against the diff the person reviews, with objects that lie about their
names, from inside a real session container as uid 1000.

A pack's ``.idx`` says which object lies where in the pack, and git believes it: it checks
an object's name against its content only where it reads a named commit or tree itself
(``parse_object``), never for the trees and files below it. The diff read the workspace
through a shadow whose objects are the agent's and the person's together, and git looks in
every pack (the newest first) before any loose object. So an agent that committed a
backdoor, waited for it to be brought in, then wrote a pack whose index gave the person's
``src`` folder (the fork's, a name it reads in its own repository) the content of its own
``src``, had the diff show no change to the file: the fork, read through the lie, held the
backdoor too. The branch the person pushes has it. The diff now reads only objects whose
names git has checked: the person's, and the workspace's commits fetched into the shadow
first (each object hashed as it comes in).
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_diff_undone_commits import BACKDOOR, backdoored
from tests.support.agent_app import in_container
from tests.support.appliance import Appliance
from tests.support.forged_pack import forge


def test_a_pack_that_lies_about_the_persons_objects_hides_nothing_from_the_diff(
        app: Appliance, repo: Path) -> None:
    s, _ = backdoored(app, repo, "liar")
    before = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert {"status": "M", "path": "src/app.py"} in before["files"], before["files"]

    # The fork's src folder, as the agent's own src (with the backdoor) to whoever believes
    # the pack.
    _, out = in_container(app, s, forge("HEAD:src", "origin/main:src"))
    assert "lies=" in out, out  # the control: the agent's own git reads the forged pack
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert {"status": "M", "path": "src/app.py"} in diff["files"], \
        f"the diff hid the backdoor on {s['branch']}: {diff['files']}"
    assert BACKDOOR in diff["diff"]
