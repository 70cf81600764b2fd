"""Characters that make the agent's code read as other code, in real headless Chromium
against the real API and engine.

The person reads what the agent changed in the Files tab before merging it. Bidirectional
controls reorder what the browser draws ("Trojan Source": a line whose check is inside a
comment reads as a check), and zero-width characters hide in a name (``is_admin`` and
``is_ad<ZWJ>min`` are two identifiers that look alike); a file's name can hide its
extension the same way (``report<RLO>txt.sh`` is drawn ``reporths.txt``). The agent writes
them into its worktree in its real container (base image) as its own uid. Every one is
now shown as what it is, a marked ``U+XXXX``, in the tree, the file viewer and the diff
(whose list of changed files is git's, which writes such a name in octal escapes): the
page's text holds none of them as such. The chat shows them the same way in a command the
agent ran (folded with its output) and in its code blocks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, expect

from appliance.agents.boot import TMUX_SESSION
from tests.e2e.test_health_recovery import wait_agent, wait_terminal
from tests.e2e.webui_browser import watched
from tests.integration.test_transcript_containment import claude_says, line, start_session
from tests.support.appliance import Appliance, wait_for
from tests.support.hostile import agent_argv

pytestmark = pytest.mark.e2e

RLO, LRI, PDI, ZWJ, ZWSP, RLM = "\u202e", "\u2066", "\u2069", "\u200d", "\u200b", "\u200f"
#: Unicode's Default_Ignorable_Code_Point (drawn as nothing) but the two selectors that choose
#: an emoji's drawing (U+FE0E, U+FE0F), and the bidi controls among them.
HIDDEN = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0d\ufeff\uffa0"
                    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
NAME = f"report{RLO}txt.sh"
#: Names of the root that read as files in ``src``: each with a character drawn as a slash
#: (division, fraction, fullwidth, big solidus; a box-drawing diagonal; Philippine).
LOOKALIKE_NAMES = ("src\u2215app.py", "src\u2044util.py", "src\uff0fmain.py",
                   "src\u29f8cli.py", "src\u2571api.py", "src\u1735db.py")
#: Those characters, the web UI's and the CLI's set.
SLASHES = re.compile("[\u1735\u2044\u2215\u2571\u29f8\uff0f]")
#: The Trojan Source line: drawn, the check reads as a comment and the comment as code.
CODE = (f'access_level = "user"\n'
        f'if access_level != "user{RLO} {LRI}# Check if admin{PDI} {LRI}":\n'
        f'    print("You are an admin.")\n'
        f'def is_ad{ZWJ}min():{ZWSP}\n    return True\n')
WRITE = 'open(my $f, ">", $ARGV[0]) or die "$!"; binmode $f, ":utf8"; print $f $ARGV[1]'
#: Characters Unicode says to draw as nothing when a font has no glyph for them, and a
#: terminal or browser does: tag letters (U+E0000..: ``is_ad`` then "drop table" spelled in
#: tags, then ``min``, reads as ``is_admin``, the instruction hidden in it), the Hangul filler
#: that was a JavaScript backdoor's whole variable name, a soft hyphen, a variation selector.
TAGGED = "".join(chr(0xE0000 + ord(c)) for c in "drop table")
DRAWN_AS_NOTHING = (f"def is_ad{TAGGED}min():\n    return True\n"
                    "run(\u3164)  # ar\u00adgs\u034f\n"
                    "def chec\ufe00k():\n    return False\n")


def drawn(where: Locator) -> str:
    text: str = where.evaluate("e => e.innerText")
    return text


def no_hidden(where: Locator, what: str) -> None:
    text = drawn(where)
    found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(text)})
    assert found == [], f"{what} draws {found} unmarked: {text[:400]!r}"


def test_hidden_and_reordering_characters_are_shown_as_what_they_are(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    name = session["name"]
    argv = ["perl", "-CA", "-e", WRITE]
    agent_argv(container, [*argv, f"/workspace/{NAME}", "echo hi\n"])
    agent_argv(container, [*argv, "/workspace/src/app.py", CODE])
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/files")
        files = page.locator("section.files")
        row = page.locator(f'.tree-row[data-path="{NAME}"]')
        expect(row).to_contain_text("report")
        no_hidden(page.locator(".tree-pane"), "the tree")
        expect(row.locator(".hidden-char")).to_have_text(["U+202E"])

        page.locator('[data-path="src"]').click()
        page.locator('[data-path="src/app.py"]').click()
        viewer = page.get_by_test_id("file-viewer")
        expect(viewer).to_contain_text("You are an admin.")
        expect(viewer.locator(".hljs-built_in")).not_to_have_count(0)  # still highlighted
        no_hidden(viewer, "the file viewer")
        expect(viewer.locator(".hidden-char")).to_have_text(
            ["U+202E", "U+2066", "U+2069", "U+2066", "U+200D", "U+200B"])

        page.get_by_test_id("files-diff").click()
        diff = page.get_by_test_id("diff")
        expect(diff).to_contain_text("You are an admin.")
        no_hidden(diff, "the diff")
        # git names the new file in octal escapes, which hide nothing.
        expect(diff.locator(".changed")).to_contain_text('"report\\342\\200\\256txt.sh"')
        assert diff.locator(".diff-body .hidden-char").count() >= 6, drawn(diff)
        desk.shot("diff-hidden-chars")
        no_hidden(files, "the Files tab")
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


#: The command the agent ran, as the chat shows it folded: drawn, the deletion reads as
#: part of the echoed words.
COMMAND = f"echo 'cleaning up' {RLO}; rm -rf ~/.ssh #{PDI}"


def test_the_chat_shows_hidden_characters_in_commands_and_code(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    call = {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": COMMAND}}]}}
    result = {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": f"removed{ZWSP}"}]}}
    answer = line("assistant", f"Done. The check:\n\n```python\n{CODE}```\n")
    claude_says(container, sid, json.dumps(call), json.dumps(result), answer)
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/chat")
        chat = page.locator(".chat .messages")
        expect(chat.locator(".msg.assistant")).to_contain_text("You are an admin.")
        tool = chat.locator("details.tool")
        expect(tool.locator(".tool-name")).to_have_text("Bash")
        tool.locator("summary").click()
        expect(tool.locator("pre.result")).to_be_visible()
        no_hidden(chat, "the chat")
        expect(tool.locator(".tool-arg .hidden-char")).to_have_text(["U+202E", "U+2069"])
        expect(tool.locator("pre.result .hidden-char")).to_have_text(["U+200B"])
        expect(chat.locator(".msg.assistant pre .hidden-char")).to_have_text(
            ["U+202E", "U+2066", "U+2069", "U+2066", "U+200D", "U+200B"])
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


def test_tag_letters_fillers_and_selectors_are_shown_as_what_they_are(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """Words spelled in tag letters are not drawn at all (``is_ad`` + "drop table" in tags +
    ``min`` reads as ``is_admin``), a Hangul filler is drawn as a blank (a variable's whole
    name in a JavaScript backdoor), a soft hyphen and a variation selector as nothing; in a
    file's name too, and in the chat's prose as in its code. Each is now marked; the
    selector that draws an emoji is not."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    argv = ["perl", "-CA", "-e", WRITE]
    tagged_name = f"notes{TAGGED}.md"
    agent_argv(container, [*argv, f"/workspace/{tagged_name}", "echo hi\n"])
    agent_argv(container, [*argv, "/workspace/src/app.py", DRAWN_AS_NOTHING])
    claude_says(container, sid, line("assistant", f"\u26a0\ufe0f is_ad{TAGGED}min() guards it.\n\n"
                                  f"```python\n{DRAWN_AS_NOTHING}```\n"))
    tags = [f"U+{0xE0000 + ord(c):05X}" for c in "drop table"]
    in_code = [*tags, "U+3164", "U+00AD", "U+034F", "U+FE00"]
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/files")
        row = page.locator(f'.tree-row[data-path="{tagged_name}"]')
        expect(row).to_contain_text("notes")
        no_hidden(page.locator(".tree-pane"), "the tree")
        expect(row.locator(".hidden-char")).to_have_text(tags)
        page.locator('[data-path="src"]').click()
        page.locator('[data-path="src/app.py"]').click()
        viewer = page.get_by_test_id("file-viewer")
        expect(viewer).to_contain_text("return False")
        no_hidden(viewer, "the file viewer")
        expect(viewer.locator(".hidden-char")).to_have_text(in_code)

        page.goto(f"/s/{name}/chat")
        said = page.locator(".chat .messages .msg.assistant")
        expect(said).to_contain_text("guards it.")
        no_hidden(said, "the chat")
        expect(said.locator(".hidden-char")).to_have_text([*tags, *in_code])  # prose, code
        assert "\u26a0\ufe0f" in drawn(said)  # an emoji's own selector is left as it is
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


def test_what_reads_as_a_separator_in_a_name_is_shown_as_what_it_is(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """Files of the root named ``src<U+2215>app.py`` and its kin (:data:`LOOKALIKE_NAMES`)
    read in the tree as ``src/app.py``, files in ``src``, the viewer's heading too. In a
    path each such character is now marked; in the file's text (``1<U+2044>2``) it is not,
    nor in the diff, whose names git quotes."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    argv = ["perl", "-CA", "-e", WRITE]
    for name in LOOKALIKE_NAMES:
        agent_argv(container, [*argv, f"/workspace/{name}", "half = 1\u20442\n"])
    marks = [f"U+{ord(n[3]):04X}" for n in LOOKALIKE_NAMES]
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{session['name']}/files")
        for name, mark in zip(LOOKALIKE_NAMES, marks, strict=True):
            row = page.locator(f'.tree-row[data-path="{name}"]')
            expect(row).to_contain_text(name[4:])
            expect(row.locator(".hidden-char")).to_have_text([mark])
        tree = drawn(page.locator(".tree-pane"))
        assert not SLASHES.search(tree), f"the tree draws a slash that is none: {tree!r}"
        page.locator(f'[data-path="{LOOKALIKE_NAMES[0]}"]').click()
        viewer = page.get_by_test_id("file-viewer")
        expect(viewer.locator(".viewer-head .hidden-char")).to_have_text([marks[0]])
        expect(viewer.locator("pre")).to_contain_text("half = 1\u20442")  # words, unmarked
        assert viewer.locator("pre .hidden-char").count() == 0
        page.get_by_test_id("files-diff").click()
        diff = page.get_by_test_id("diff")
        expect(diff.locator(".changed")).to_contain_text('"src\\342\\210\\225app.py"')
        assert not SLASHES.search(drawn(diff.locator(".changed")))
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


#: What the agent says it did: a right-to-left mark, a joiner in a word, and the failure count
#: written backwards behind an override (which the appliance drops from every timeline text).
SAID = f"All 12 tests pass{RLM}, and the di{ZWJ}ff is empty{RLO} :deliaf 3{PDI}"


def test_the_timeline_shows_hidden_characters_in_what_the_agent_said(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The agent's words in the timeline are its transcript, as in the chat: a character
    there that is drawn as nothing or turns the words' direction is marked as in the chat."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    claude_says(container, sid, line("assistant", SAID))
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/timeline")
        row = page.locator("[data-testid=timeline-item][data-source=message]")
        expect(row).to_contain_text("All 12 tests pass")
        no_hidden(page.get_by_test_id("timeline"), "the timeline")
        expect(row.locator(".hidden-char")).to_have_text(["U+200F", "U+200D"])
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


def test_the_health_check_shows_hidden_characters_in_the_agents_process_name(
        browser: Browser, agents: Appliance, repo: Path) -> None:
    """The health check names the process under the agent's terminal, and the agent names
    its own processes (``/proc/<pid>/comm`` is its to write): a right-to-left override there
    is marked on the Info page, as the CLI and the TUI mark it."""
    agents.cli("create", "--repo", str(repo), "--name", "renamed", "--prompt", "wait",
               "--skip-permissions")
    s = agents.wait_phase("renamed", "running", timeout=120)
    wait_agent(agents, s, "the agent to start")
    [container] = agents.containers(s["id"])
    # The agent's process names itself (its own ``comm`` is its to write) and waits: played
    # by a shell in the agent's terminal once the agent left it to one.
    agent_argv(container, ["pkill", "-x", "claude"])
    wait_terminal(agents, s, "", "the agent's terminal left to a shell")
    # What is typed before the shell's prompt is thrown away (it was typed for the agent).
    wait_for(lambda: container.exec_run(["tmux", "capture-pane", "-p", "-t", TMUX_SESSION])
             .output.decode().rstrip().endswith("$"), what="the shell's prompt")
    named = "bash -c 'printf \"claude\\342\\200\\256exe.sh\" > /proc/$$/comm; sleep 600 & wait'"
    agent_argv(container, ["tmux", "send-keys", "-t", TMUX_SESSION, named, "Enter"])
    wait_terminal(agents, s, lambda ran: ran.startswith("claude"), "the renamed process")
    with watched(browser, agents) as desk:
        page = desk.page
        page.goto("/s/renamed/info")
        page.get_by_test_id("health-check").click()
        agent = page.get_by_test_id("check-agent")
        expect(agent).to_contain_text("exe.sh")
        no_hidden(agent, "the health check")
        expect(agent.locator(".hidden-char")).to_have_text(["U+202E"])
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


#: A to-do the agent plans, drawn ``Run the tests`` then, reversed by the override, words that
#: read as harmless; and a tool named with an override left open, which turns the direction
#: of the command drawn after it on the same line.
TODO = f"Run the tests{RLO} txet ni edoc eht ot{ZWSP}"
TOOL = f"Bash{RLO}"


def test_the_chat_shows_hidden_characters_in_its_plans_and_tool_names(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The agent's to-do list (its plan tool's ``todos``) and the name of each tool it calls
    are its words in its transcript, as its commands are: a character there that is drawn as
    nothing or turns the words' direction is marked as in its commands."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    plan = {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "p1", "name": "TodoWrite",
         "input": {"todos": [{"content": TODO, "status": "pending"}]}}]}}
    call = {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": TOOL, "input": {"command": "ls"}}]}}
    claude_says(container, sid, json.dumps(plan), json.dumps(call))
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/chat")
        chat = page.locator(".chat .messages")
        expect(chat.locator(".todos .todo")).to_contain_text("Run the tests")
        expect(chat.locator("details.tool .tool-name")).to_contain_text("Bash")
        no_hidden(chat, "the chat")
        expect(chat.locator(".todos .hidden-char")).to_have_text(["U+202E", "U+200B"])
        expect(chat.locator("details.tool .tool-name .hidden-char")).to_have_text(["U+202E"])
        assert desk.errors == [], json.dumps(desk.errors, indent=1)
