"""The Chat tab and image attachments in real headless Chromium, with a real agent.

The agent tier of the suite (see conftest): the real ``claude`` CLI in the agent image,
through the real proxy, to the fake Messages API on loopback, whose final answer here is
Markdown (bold and a fenced code block). A person creates the session from the form with an
image and a file that only pretends to be one, reads the conversation in the Chat tab (their
prompt, the rendered answer, the Bash call folded with its result), sends a message with an
image and sees the new turn arrive, and sees the API refuse a non-image. No console error is
allowed except the refused uploads' 415s. The chat is saved at desktop and phone size into
``docs/screenshots/``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.e2e.agent_checks import transcript, wait_answer
from tests.e2e.webui_browser import (
    PHONE,
    TIMEOUT_MS,
    create_form,
    no_horizontal_scroll,
    watched,
)
from tests.integration.test_files_api import png
from tests.integration.test_transcript_containment import (
    HOME,
    append,
    claude_says,
    line,
    start_session,
)
from tests.support.appliance import Appliance
from tests.support.fake_models import FakeModels
from tests.support.hostile import agent_argv

pytestmark = pytest.mark.e2e

PROMPT = "please run the command"
SECOND = "and now a second one"
COMMAND = "echo tool-ran | tee /workspace/tool-output.txt"
ANSWER = ("I ran it. The file now says **tool-ran**; read it back with:\n\n"
          "```sh\ncat /workspace/tool-output.txt\n```\n\nAll done.")
REFUSED = "only PNG, JPEG, GIF and WebP images can be attached"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModels]:
    """The conftest's fake model API, answering in Markdown after a command with output."""
    with FakeModels(tmp_path, answer=ANSWER, command=COMMAND) as models:
        yield models


def uploads(app: Appliance, sid: str) -> list[Path]:
    folder = app.settings.uploads_dir / sid
    return sorted(folder.iterdir()) if folder.is_dir() else []


def answers(chat: Locator) -> Locator:
    return chat.locator(".msg.assistant").filter(has_text="All done.")


def test_chat_shows_a_real_transcript_and_takes_messages_and_images(
    browser: Browser, agents: Appliance, fake: FakeModels, repo: Path, tmp_path: Path
) -> None:
    name = f"webui-chat-{uuid.uuid4().hex[:8]}"
    image = tmp_path / "screen.png"
    image.write_bytes(png(4, 3))
    pretender = tmp_path / "notes.png"  # a PNG by its name only: the browser lets it through
    pretender.write_text("not an image at all\n")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("plain text\n")
    base = agents.base
    with watched(browser, agents) as desk, watched(browser, agents, PHONE) as phone:
        page = desk.page
        # --- the create form: a prompt, one image, one pretender -------------------------
        create_form(page, repo, name)
        page.fill("#prompt", PROMPT)
        page.check("#skip_permissions")
        form = page.get_by_test_id("create-form")
        form.get_by_test_id("attach").set_input_files(str(text_file))
        expect(form.locator(".attachments [role=alert]")).to_contain_text(
            "notes.txt: only PNG, JPEG, GIF or WebP images")  # refused before any upload
        form.get_by_test_id("attach").set_input_files([str(image), str(pretender)])
        expect(form.locator(".thumb")).to_have_count(2)
        desk.expected.append(415)  # the pretender's upload, refused by the API
        page.get_by_test_id("create-submit").click()
        notes = page.get_by_test_id("upload-notes")
        expect(notes).to_contain_text(f"notes.png: {REFUSED}")
        expect(notes).to_contain_text("screen.png → /workspace-uploads/")
        # A refused attachment keeps the page here until the person has read it.
        page.get_by_test_id("open-session").click()
        expect(page).to_have_url(f"{base}/s/{name}")
        sid = agents.session(name)["id"]
        stored = uploads(agents, sid)
        assert [p.name.endswith("_screen.png") for p in stored] == [True], stored
        assert stored[0].read_bytes() == image.read_bytes()

        # --- the transcript: prompt, Markdown answer, the tool call folded ---------------
        wait_answer(agents, sid, ANSWER)
        chat = page.locator(".chat .messages")
        expect(chat.locator(".msg.user").first).to_contain_text(PROMPT)
        answer = answers(chat)
        expect(answer).to_have_count(1)
        expect(answer.locator("strong")).to_have_text("tool-ran")
        expect(answer.locator("pre code")).to_have_text("cat /workspace/tool-output.txt")
        assert "**" not in answer.inner_text()
        tool = chat.locator("details.tool")
        expect(tool).to_have_count(1)
        expect(tool.locator(".tool-name")).to_have_text("Bash")
        expect(tool.locator(".tool-arg")).to_have_text(COMMAND)
        expect(tool.locator("summary")).to_contain_text("done")
        assert tool.evaluate("d => d.open") is False
        expect(tool.locator("pre.result")).to_be_hidden()
        tool.locator("summary").click()
        expect(tool.locator("pre.result")).to_be_visible()
        expect(tool.locator("pre.result")).to_contain_text("tool-ran")
        tool.locator("summary").click()
        desk.shot("chat")
        phone.page.goto(f"/s/{name}/chat")
        expect(answers(phone.page.locator(".chat .messages")).locator("strong")).to_be_visible()
        phone.shot("chat")
        no_horizontal_scroll(phone.page)

        # --- a message with an image, typed in the chat: the new turn arrives live -------
        composer = page.locator("form.composer")
        cursor = transcript(agents, sid)["cursor"]
        before = {p.name for p in uploads(agents, sid)}
        composer.get_by_label("Message to the agent").fill(SECOND)
        composer.get_by_test_id("attach").set_input_files(str(image))
        expect(composer.locator(".thumb")).to_have_count(1)
        composer.get_by_role("button", name="Send").click()
        expect(composer.get_by_label("Message to the agent")).to_have_value("")
        expect(chat.locator(".msg.user").filter(has_text=SECOND)).to_have_count(1)
        expect(answers(chat)).to_have_count(2, timeout=2 * TIMEOUT_MS)
        stored = uploads(agents, sid)
        assert len(stored) == 2, stored
        later = transcript(agents, sid, cursor)["messages"]
        said = " ".join(m["text"] for m in later if m["kind"] == "user")
        assert SECOND in said, json.dumps(later, indent=1)
        [newest] = [p for p in stored if p.name not in before]
        assert newest.read_bytes() == image.read_bytes()
        assert f"/workspace-uploads/{newest.name}" in said  # the agent is told where it is
        assert any(SECOND.encode() in r.body for r in fake.model_requests())
        # The phone, open all along, shows the new turn too.
        expect(answers(phone.page.locator(".chat .messages"))).to_have_count(2)

        # --- a pretender from the chat: the API's refusal is shown; nothing is sent -------
        composer.get_by_label("Message to the agent").fill("this one carries a bad file")
        composer.get_by_test_id("attach").set_input_files(str(pretender))
        desk.expected.append(415)
        composer.get_by_role("button", name="Send").click()
        expect(page.get_by_test_id("chat-error")).to_have_text(REFUSED)
        expect(composer.get_by_label("Message to the agent")).to_have_value(
            "this one carries a bad file")
        assert len(uploads(agents, sid)) == 2
        assert "this one carries a bad file" not in json.dumps(transcript(agents, sid))

        assert desk.expected == []  # both refusals were logged, and nothing else
        assert desk.errors == [] and phone.errors == [], json.dumps(
            {"desktop": desk.errors, "phone": phone.errors}, indent=1)


#: Characters of one message the agent floods its transcript with, each drawn as nothing.
FLOOD = 300_000


def test_a_flooded_message_is_cut_not_drawn_whole(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """One line of the agent's transcript can hold megabytes of words, and each character
    that is drawn as nothing is a marked element of its own: the chat drew every one of
    them. It now draws the first part of such a message and says how much more it held."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    folder = f"{HOME}/.claude/projects/-workspace"
    path = f"{folder}/{sid}.jsonl"
    agent_argv(container, ["mkdir", "-p", folder])
    flood = ('open(my $f, ">>", $ARGV[0]) or die "$!"; binmode $f, ":utf8"; print $f '
             '"{\\"type\\":\\"assistant\\",\\"message\\":{\\"role\\":\\"assistant\\",'
             '\\"content\\":\\"flood " . ("\\x{200b}" x $ARGV[1]) . "\\"}}\\n"')
    agent_argv(container, ["perl", "-e", flood, path, str(FLOOD)])
    append(container, path, line("assistant", "after the flood"))
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/chat")
        said = page.locator(".chat .messages .msg.assistant")
        expect(said.last).to_have_text("after the flood")
        expect(said.first).to_contain_text("more characters not shown")
        marks = said.first.locator(".hidden-char").count()
        assert marks <= 20_000, f"the chat drew {marks} marks of one message"
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


TODOS = 2_000


def test_a_to_do_list_styles_only_what_it_says_and_draws_a_bounded_few(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """A to-do item's status is the agent's word, and it was written into the item's class:
    ``msg user`` drew the agent's item as the person's own message. And a list of thousands
    of items was drawn whole. The status is now one of the plan tools' own (the core reads
    any other word as pending), and the list is cut, saying how many more it held."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    todos = [{"content": "merge it, as the person asked", "status": "msg user"},
             {"content": "done", "status": "completed"}]
    todos += [{"content": f"item {i}", "status": "pending"} for i in range(TODOS)]
    plan = {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "p1", "name": "TodoWrite", "input": {"todos": todos}}]}}
    claude_says(container, sid, json.dumps(plan))
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/chat")
        items = page.locator(".chat .messages .todos li")
        expect(items.first).to_contain_text("merge it")
        assert items.first.get_attribute("class") == "todo pending", \
            items.first.get_attribute("class")
        assert items.nth(1).get_attribute("class") == "todo completed"
        assert page.locator(".chat .messages .msg.user").count() == 0
        expect(items.last).to_contain_text("more items not shown")
        assert items.count() <= 201, f"the chat drew {items.count()} items of one list"
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


def test_codex_plan_is_drawn_from_the_plan_the_core_reads_not_guessed_keys(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The chat guessed a plan's keys (``plan``, ``todos``, ``content``, ``step``) from the
    tool's arguments, and drew what its guesses missed as nothing: Codex's ``explanation``
    of its steps. It now draws the core's ``plan`` (text and steps) and nothing else, and an
    argument the plan tool does not have is not drawn as a step."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "codex")
    name = session["name"]
    day = f"{HOME}/.codex/sessions/2025/01/01"
    args = {"explanation": "first read, then edit", "todos": [{"content": "a guessed key"}],
            "plan": [{"step": "read the code", "status": "completed"},
                     {"step": "edit it", "status": "msg user"}]}
    call = {"type": "response_item", "payload": {
        "type": "function_call", "name": "update_plan", "call_id": "p1",
        "arguments": json.dumps(args)}}
    agent_argv(container, ["mkdir", "-p", day])
    append(container, f"{day}/rollout-2025-01-01T00-00-00-a.jsonl", json.dumps(call))
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/chat")
        plan = page.locator(".chat .messages .plan")
        expect(plan).to_contain_text("first read, then edit")
        items = plan.locator(".todos li")
        expect(items).to_have_count(2)
        assert [items.nth(i).get_attribute("class") for i in range(2)] == \
            ["todo completed", "todo pending"]
        expect(items.nth(1)).to_contain_text("edit it")
        expect(plan).not_to_contain_text("a guessed key")
        assert desk.errors == [], json.dumps(desk.errors, indent=1)
