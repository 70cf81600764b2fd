"""The agent's logs read from a real home folder: bounded lines, files and folders; symlinks,
FIFOs and hostile JSON refused or passed over, never followed, never a crash."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.agents import reader
from appliance.agents.logs import (
    MAX_DEPTH,
    MAX_LINES,
    claude_messages,
    codex_messages,
    load,
    parse_lines,
)
from appliance.agents.reader import read_transcript
from appliance.errors import Conflict
from appliance.readers import Tree, host_tree
from appliance.sessions import Agent, Session, SessionId

SID = SessionId("0b9f6a43-1111-2222-3333-444455556666")


def session(agent: Agent) -> Session:
    now = datetime.now(UTC)
    return Session(id=SID, name="s", repo_path="/r", worktree_path="/w", branch="clauderon/s",
                   base_ref="main", image="img", agent=agent, created_at=now, updated_at=now)


def on_host(home: Path) -> Callable[[], AbstractContextManager[Tree]]:
    return partial(host_tree, home, label="the agent's home", absent="no home")


def line(text: str, kind: str = "user") -> bytes:
    return json.dumps({"type": kind, "message": {"content": text}}).encode() + b"\n"


def rollout(text: str) -> bytes:
    return json.dumps({"type": "response_item", "payload": {
        "type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": text}]}}).encode() + b"\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / f"{SID}.jsonl").write_bytes(line("CANARY"))
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def log(home: Path) -> Path:
    folder = home / ".claude" / "projects" / "-workspace"
    folder.mkdir(parents=True)
    return folder / f"{SID}.jsonl"


def texts(home: Path, cursor: int = 0, agent: Agent = Agent.CLAUDE) -> tuple[list[str], int]:
    page = read_transcript(on_host(home), session(agent), cursor)
    return [m.text for m in page.messages], page.cursor


# --- lines (pure) ------------------------------------------------------------------------


def nest(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("raw", [
    nest(100_000), nest(MAX_DEPTH + 1), '{"a": NaN}', '{"a": -Infinity}', '{"a": 1e999}',
    '{"a": ' + "9" * 5000 + "}", "{not json}", b"\xff\xfe{}", "",
])
def test_lines_json_cannot_carry_back_are_passed_over(raw: str | bytes) -> None:
    assert load(raw) is None


def test_lines_within_bounds_load() -> None:
    assert load(nest(MAX_DEPTH)) is not None
    assert load('{"a": 1.5e300, "b": [1, {"c": null}]}') == {"a": 1.5e300,
                                                             "b": [1, {"c": None}]}


def test_parse_lines_stops_at_its_line_limit() -> None:
    data = b"{}\n" + b"".join(line(str(i)) for i in range(5)) + line("torn")[:5]
    messages, used = parse_lines(Agent.CLAUDE, data, limit=3)
    assert [m.text for m in messages] == ["0", "1"] and used == len(b"{}\n" + line("0")
                                                                    + line("1"))
    messages, used = parse_lines(Agent.CLAUDE, data)
    assert len(messages) == 5 and used == len(data) - 5
    assert parse_lines(Agent.CLAUDE, b"{}\n" * 30_000) == ([], 3 * MAX_LINES)


def test_values_that_should_be_strings_and_are_not_become_none() -> None:
    [call] = claude_messages({"type": "assistant", "timestamp": ["x"], "message": {
        "content": [{"type": "tool_use", "id": {"a": 1}, "name": 7, "input": {}}]}})
    assert (call.ts, call.tool_id, call.tool) == (None, None, None)
    [said] = codex_messages({"type": "response_item", "payload": {
        "type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": 5}, {"type": "output_text", "text": "ok"},
                    {"type": "output_text", "text": ["a"]}]}})
    assert said.text == "ok"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=20)
FIELDS = ("text", "name", "id", "input", "tool_use_id", "is_error", "arguments", "call_id",
          "output", "action")
PARTS = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "input_text", "output_text"])},
    optional={"text": JSON}), max_size=3)


def block(*types: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(types), "role": st.sampled_from(["user", "assistant"]) | JSON},
        optional={"content": PARTS | JSON,
                  **{field: JSON | st.just('{"a": [1]}') for field in FIELDS}})


LINES = {
    Agent.CLAUDE: st.fixed_dictionaries(
        {"type": st.sampled_from(["user", "assistant"]),
         "message": st.fixed_dictionaries({}, optional={
             "content": st.lists(block("text", "tool_use", "tool_result"), max_size=3)
             | JSON})},
        optional={"timestamp": JSON, "isMeta": JSON, "isSidechain": JSON}),
    Agent.CODEX: st.fixed_dictionaries(
        {"type": st.just("response_item"),
         "payload": block("message", "function_call", "custom_tool_call", "local_shell_call",
                          "function_call_output", "custom_tool_call_output")},
        optional={"timestamp": JSON}),
    Agent.GEMINI: st.fixed_dictionaries(
        {"type": st.sampled_from(["user", "gemini"])},
        optional={"content": JSON | st.lists(st.fixed_dictionaries({}, optional={
            "text": JSON, "functionResponse": JSON | st.fixed_dictionaries(
                {}, optional={"id": JSON, "response": JSON})}), max_size=3),
            "toolCalls": JSON | st.lists(st.fixed_dictionaries(
                {}, optional={"name": JSON, "id": JSON, "args": JSON}), max_size=3),
            "timestamp": JSON}),
    Agent.CUSTOM: st.fixed_dictionaries({}, optional={"text": JSON}),
}


@settings(max_examples=300)
@given(st.sampled_from(Agent).flatmap(lambda a: st.tuples(st.just(a), LINES[a])))
def test_any_line_of_the_right_shape_becomes_messages_json_can_carry(
        case: tuple[Agent, dict[str, Any]]) -> None:
    agent, entry = case
    data = json.dumps(entry).encode() + b"\n"
    messages, used = parse_lines(agent, data)
    assert used == len(data)
    out = json.dumps([m.to_json() for m in messages], allow_nan=False)
    assert all(isinstance(m["text"], str) for m in json.loads(out))


@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    for agent in Agent:
        _, used = parse_lines(agent, data)
        assert used == data.rfind(b"\n") + 1


# --- files --------------------------------------------------------------------------------


def test_no_home_or_no_log_yet_is_an_empty_answer(tmp_path: Path, home: Path) -> None:
    assert texts(tmp_path / "never-made", 7) == ([], 7)
    assert texts(home, 3) == ([], 3)
    assert texts(home, 0, Agent.CODEX) == ([], 0)


@pytest.mark.parametrize("swap", [".claude", ".claude/projects",
                                  ".claude/projects/-workspace", "log"])
def test_a_symlink_anywhere_on_the_way_is_refused_never_followed(
        home: Path, log: Path, swap: str) -> None:
    log.write_bytes(line("real"))
    target = home.parent / "secrets"
    if swap == "log":
        log.unlink()
        os.symlink(target / f"{SID}.jsonl", log)
    else:
        os.rename(home / swap, home / (swap + ".real"))
        # Mirror what the reader would look for under the target, holding the canary.
        rest = log.relative_to(home / swap).parent
        (target / rest).mkdir(parents=True, exist_ok=True)
        (target / rest / log.name).write_bytes(line("CANARY"))
        os.symlink(target, home / swap)
    with pytest.raises(Conflict) as info:
        read_transcript(on_host(home), session(Agent.CLAUDE), 0)
    assert "symlink" in info.value.message and "CANARY" not in info.value.message


def test_a_fifo_a_socket_and_a_folder_are_refused(log: Path) -> None:
    os.mkfifo(log)
    with pytest.raises(Conflict, match="not a regular file"):
        read_transcript(on_host(log.parents[3]), session(Agent.CLAUDE), 0)
    log.unlink()
    log.mkdir()
    with pytest.raises(Conflict, match="folder"):
        read_transcript(on_host(log.parents[3]), session(Agent.CLAUDE), 0)


def test_a_line_longer_than_one_answer_is_passed_over(home: Path, log: Path) -> None:
    long = b'{"type":"user","message":{"content":"' + b"x" * reader.MAX_READ + b'"}}\n'
    log.write_bytes(line("before") + long + line("after"))
    got, cursor = texts(home)
    assert got == ["before"]
    got, cursor = texts(home, cursor)  # the long line: looked through, nothing shown
    assert got == [] and cursor == len(line("before") + long)
    assert texts(home, cursor)[0] == ["after"]


def test_a_huge_line_takes_a_bounded_number_of_answers(home: Path, log: Path) -> None:
    with log.open("wb") as f:
        f.write(line("before"))
        f.truncate(3 * reader.MAX_SKIP)  # sparse: no disk
        f.seek(0, os.SEEK_END)
        f.write(b"\n" + line("after"))
    seen: list[str] = []
    cursor = 0
    for _ in range(6):  # (3 * MAX_SKIP) / (MAX_READ + MAX_SKIP) answers, and a few more
        got, nxt = texts(home, cursor)
        seen += got
        assert nxt >= cursor
        cursor = nxt
    assert seen == ["before", "after"]


def test_an_unfinished_huge_line_is_looked_through_once(home: Path, log: Path) -> None:
    log.write_bytes(b"{" + b" " * (reader.MAX_READ + 10))
    assert texts(home) == ([], reader.MAX_READ + 11)  # to the end: not read again
    with log.open("ab") as f:
        f.write(b"}\n" + line("next"))
    assert texts(home, reader.MAX_READ + 11)[0] == ["next"]


# --- Codex's folders ----------------------------------------------------------------------


def test_codex_logs_are_read_in_path_order_skipping_what_is_not_a_log(home: Path) -> None:
    sessions = home / ".codex" / "sessions"
    for day, name, text in [("2025/01/02", "rollout-b.jsonl", "two"),
                            ("2025/01/01", "rollout-a.jsonl", "one"),
                            ("2025/01/01", "rollout-c.jsonl", "one more"),
                            ("2025/01/01", "notes.jsonl", "not a rollout"),
                            ("2025/xx/01", "rollout-d.jsonl", "not a date")]:
        (sessions / day).mkdir(parents=True, exist_ok=True)
        (sessions / day / name).write_bytes(rollout(text))
    os.symlink(home.parent / "secrets" / f"{SID}.jsonl", sessions / "2025/01/01/rollout-s.jsonl")
    os.symlink(home.parent / "secrets", sessions / "2025/01/03")
    os.mkfifo(sessions / "2025/01/01/rollout-f.jsonl")
    assert texts(home, 0, Agent.CODEX)[0] == ["one", "one more", "two"]


def test_codex_folders_with_too_much_in_them_are_refused(home: Path) -> None:
    day = home / ".codex" / "sessions" / "2025" / "01" / "01"
    day.mkdir(parents=True)
    (day / "rollout-0.jsonl").write_bytes(rollout("one"))
    for i in range(1, reader.MAX_FILES + 1):
        os.link(day / "rollout-0.jsonl", day / f"rollout-{i}.jsonl")
    with pytest.raises(Conflict, match=f"at most {reader.MAX_FILES}"):
        read_transcript(on_host(home), session(Agent.CODEX), 0)
    for i in range(reader.MAX_ENTRIES):
        os.close(os.open(day / f"junk-{i}", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(Conflict, match=f"more than {reader.MAX_ENTRIES} entries"):
        read_transcript(on_host(home), session(Agent.CODEX), 0)
