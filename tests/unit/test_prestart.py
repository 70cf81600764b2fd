"""The warm start's pure parts: which files go into the created container, the entry
script's shape, and the tar stream Docker unpacks (root-owned regular files only)."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from appliance.agents.boot import (
    MISSING_TOOLS,
    START_SCRIPT_PATH,
    FileWrite,
    boot_plan,
    check_then_argv,
)
from appliance.agents.hooks import HOOK_SCRIPT_PATH, MANAGED_SETTINGS_PATH
from appliance.agents.prestart import BOOT_ONLY, ENTRY_PATH, SEED_DIR, prestart
from appliance.backends.base import SpecFile
from appliance.backends.docker_archive import tar_of
from appliance.placeholders import placeholder_env
from appliance.sessions import Agent
from tests.unit.test_agents import session

KEY = b"k" * 32


def test_claude_root_files_seeds_and_entry() -> None:
    s = session()
    plan = boot_plan(s, placeholder_env(KEY, s.id))
    pre = prestart(plan)
    paths = {f.path: f for f in pre.files}
    assert set(paths) == {HOOK_SCRIPT_PATH, MANAGED_SETTINGS_PATH, START_SCRIPT_PATH,
                          f"{SEED_DIR}/0", ENTRY_PATH}
    assert paths[f"{SEED_DIR}/0"].mode == 0o444  # read-only even to its owner
    assert paths[HOOK_SCRIPT_PATH].mode == 0o755 and paths[MANAGED_SETTINGS_PATH].mode == 0o644
    home = next(f for f in plan.files if f.path.endswith("/.claude.json"))
    assert paths[f"{SEED_DIR}/0"].content == home.content
    entry = paths[ENTRY_PATH].content.decode()
    # Claude's state file only when absent; the agent started as the exec boot starts it;
    # then the image's own entrypoint and command.
    assert "[ -e /home/agent/.claude.json ] ||" in entry
    assert "tmux has-session -t agent" in entry and START_SCRIPT_PATH in entry
    assert entry.rstrip().endswith('if [ "$#" -gt 0 ]; then exec "$@"; fi\nexec sh')
    after = pre.after_start(plan)
    assert after.files == () and after.tools == plan.tools
    assert after.start == ("sh", ENTRY_PATH, BOOT_ONLY)


def test_codex_files_are_rewritten_at_each_start() -> None:
    s = session(agent=Agent.CODEX)
    pre = prestart(boot_plan(s, placeholder_env(KEY, s.id)))
    entry = next(f for f in pre.files if f.path == ENTRY_PATH).content.decode()
    assert "cp /etc/clauderon/seed/0 /home/agent/.codex/config.toml.tmp" in entry
    assert "[ -e /home/agent/.codex/config.toml ]" not in entry


def test_only_the_sessions_own_placeholders() -> None:
    a, b = session(), session(id="0b9f6a43-9999-2222-3333-444455556666")
    pre = prestart(boot_plan(b, placeholder_env(KEY, b.id)))
    blob = b"".join(f.content for f in pre.files)
    assert placeholder_env(KEY, b.id)["ANTHROPIC_API_KEY"][-20:].encode() in blob
    for value in placeholder_env(KEY, a.id).values():
        assert value[-20:].encode() not in blob


def test_a_home_file_outside_the_home_is_refused() -> None:
    s = session()
    plan = boot_plan(s, placeholder_env(KEY, s.id))
    bad = plan.__class__(tools=plan.tools, start=plan.start,
                         files=(FileWrite(path="/etc/passwd", content=b"x"),))
    with pytest.raises(ValueError, match="outside the home"):
        prestart(bad)


def test_tar_holds_root_owned_regular_files_only() -> None:
    data = tar_of((SpecFile(path="/etc/clauderon/a.sh", content=b"echo", mode=0o755),
                   SpecFile(path="/etc/x/b", content=b"", mode=0o444)), mtime=1)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert [(m.name, m.mode, m.uid, m.gid, m.isfile()) for m in members] == [
            ("etc/clauderon/a.sh", 0o755, 0, 0, True), ("etc/x/b", 0o444, 0, 0, True)]
        extracted = tar.extractfile(members[0])
        assert extracted is not None and extracted.read() == b"echo"
    for path in ("etc/relative", "/etc/../root/x"):
        with pytest.raises(ValueError, match="plain path"):
            tar_of((SpecFile(path=path, content=b""),))


def test_check_then_start_in_one_exec_names_what_is_missing() -> None:
    """Run for real by ``sh``: the start runs only when every tool is there."""
    ok = subprocess.run(check_then_argv(("sh", "cat"), ("echo", "started", "--")),
                        capture_output=True, text=True, check=False)
    assert (ok.returncode, ok.stdout) == (0, "started --\n")
    bad = subprocess.run(check_then_argv(("sh", "no-such-tool-1", "cat", "no-such-tool-2"),
                                         ("echo", "started")),
                         capture_output=True, text=True, check=False)
    assert (bad.returncode, bad.stdout.split()) == (MISSING_TOOLS,
                                                    ["no-such-tool-1", "no-such-tool-2"])
