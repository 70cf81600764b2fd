"""A transcript line of tiny blocks: the agent writes a tool call in 20 bytes, the API builds
and encodes a 100-byte message for it on its one loop. One answer gives a bounded number of
messages, and a page cut short resumes at the next whole line, losing no line."""

from __future__ import annotations

import json

import pytest

from appliance.agents import logs
from appliance.agents.logs import parse_lines
from appliance.sessions import Agent

MAX_MESSAGES, MAX_PER_LINE = 5_000, 1_023  # logs.py's bounds
BLOCK = '{"type":"tool_use","name":"t"}'


def _line(blocks: int) -> bytes:
    return (json.dumps({"type": "assistant", "message": {"content": []}})
            .replace("[]", "[" + ",".join([BLOCK] * blocks) + "]") + "\n").encode()


def test_one_line_of_a_hundred_thousand_blocks_gives_a_bounded_page() -> None:
    data = _line(100_000)  # 3 MiB: under the reader's 4 MiB a page
    messages, used = parse_lines(Agent.CLAUDE, data)
    assert used == len(data)  # the line is consumed, not re-read for ever
    assert len(messages) <= MAX_PER_LINE


def test_many_lines_stop_at_a_line_and_resume_there() -> None:
    line = _line(500)
    data = line * 100  # 50,000 blocks
    messages, used = parse_lines(Agent.CLAUDE, data)
    assert len(messages) <= MAX_MESSAGES + MAX_PER_LINE
    assert 0 < used < len(data) and used % len(line) == 0
    rest, more = parse_lines(Agent.CLAUDE, data[used:])
    assert more > 0 and rest


#: Blocks of a line: many more than it gives, and fewer than a line's values (logs.py).
BLOCKS = 20_000
BLOCKS_OF = {  # a line of BLOCKS blocks, as each agent writes them
    "claude tool calls": (Agent.CLAUDE, _line(BLOCKS)),
    "claude results": (Agent.CLAUDE, (
        '{"type":"user","message":{"content":[' + ",".join(['{"type":"tool_result"}'] *
                                                            BLOCKS) + "]}}\n").encode()),
    "gemini calls": (Agent.GEMINI, (
        '{"type":"gemini","toolCalls":[' + ",".join(['{"name":"t"}'] * BLOCKS) +
        "]}\n").encode()),
    "gemini results": (Agent.GEMINI, (
        '{"type":"user","content":[' + ",".join(['{"functionResponse":{}}'] * BLOCKS) +
        "]}\n").encode()),
}


@pytest.mark.parametrize("shape", BLOCKS_OF)
def test_a_line_of_many_blocks_builds_no_more_messages_than_it_gives(
        monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    """Each block was built into a message, then all but 1,023 dropped: 100,000 built for
    a line, the reader's 4 MiB an answer, on the API's worker with the loop's lock held."""
    agent, data = BLOCKS_OF[shape]
    built: list[logs.Message] = []
    real = logs.Message

    def counted(**fields: object) -> logs.Message:
        built.append(real(**fields))  # type: ignore[arg-type]
        return built[-1]

    monkeypatch.setattr(logs, "Message", counted)
    monkeypatch.setattr(logs, "replace", lambda m, **f: m)
    messages, used = parse_lines(agent, data)
    assert used == len(data) and len(messages) == MAX_PER_LINE
    assert len(built) == MAX_PER_LINE


def _nest(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("raw", "value"), [
    (b"{}", {}), (b"", None), (b"1", 1), ("[]", []), (b" {\"a\": 1.5} ", {"a": 1.5}),
    (b'{"a":NaN}', None), (b'{"a":1e999}', None), (b'{"a":Infinity}', None),
    (b"[" * 64 + b"]" * 64, _nest(64)),
    (b"[" * 65 + b"]" * 65, None), (b"[" * 100_000 + b"]" * 100_000, None),
    ('{"a":"é"}'.encode("utf-16"), {"a": "é"}), (b"\xef\xbb\xbf{}", {}),
    (b'{"a":"\xff"}', None), (b'{"a":"\\ud800"}', {"a": "\ud800"}),
])
def test_a_line_is_loaded_once_or_passed_over(raw: str | bytes, value: object) -> None:
    assert logs.load(raw) == value
    assert logs.nested_within(logs.load(raw), logs.MAX_DEPTH)


VALUES = logs.MAX_VALUES


@pytest.mark.parametrize(("text", "values"), [
    ("{}", 1), ("[]", 1), ("0", 0), ('"a"', 1), ('{"a":[1,2]}', 4),
    ('"a,b{[c"', 1), ('"a\\"b,{"', 1), ('"a\\\\",{}', 3), ('["\\\\\\"x,"]', 2),
    ("[" + "{}," * 10 + "{}]", 22), ("[" + "0," * 10 + "0]", 12),  # 11 digits: a value more
    ("[" + "9" * 4299 + "]", 1 + 4299 // logs.DIGITS_A_VALUE),  # the longest integer read
    ('["' + "9" * 4299 + '"]', 2),  # digits in a string: a string's cost
    ('"' + "x,[{" * 1000 + '"', 1),  # in a string: no value
    ('["x"' + ',"x"' * VALUES + "]", VALUES + 1),  # too many strings: not split to count
])
def test_values_are_counted_before_the_line_is_parsed(text: str, values: int) -> None:
    assert logs.values_in(text) == values


@pytest.mark.parametrize(("raw", "value"), [
    ("[" + "{}," * (VALUES // 2 - 1) + "{}]", [{}] * (VALUES // 2)),
    ("[" + "{}," * VALUES + "{}]", None), ("[" + "0," * VALUES + "0]", None),
    ('{"a":"' + "[{}," * VALUES + '"}', {"a": "[{}," * VALUES}),  # one string
    ('["' + '\\"\\"' * VALUES + '"]', ["\"\"" * VALUES]),
    # integers of 4,299 digits, each 537 values by its digits: 1.6 MB that parsed as slowly
    # as 4 MiB of the smallest values (it was 373 values)
    ("[" + ",".join(["9" * 4299] * (VALUES * logs.DIGITS_A_VALUE // 4299 + 1)) + "]", None),
])
def test_a_line_of_more_values_than_an_answer_parses_is_passed_over(
        raw: str, value: object) -> None:
    assert logs.load(raw) == value


def test_an_answer_parses_a_bounded_count_of_values_and_resumes_at_a_line() -> None:
    """``{},`` in 3 bytes, two values: a line of 30,000 of them is parsed whole, three such
    lines an answer."""
    line = b'{"type":"assistant","message":{"content":[' + b"{}," * 30_000 + b"{}]}}\n"
    data = line * 10
    _, used = parse_lines(Agent.CLAUDE, data)
    assert used == 3 * len(line)  # four would be past the answer's values
    # What an answer spent on a file before is not parsed again in the next.
    assert parse_lines(Agent.CLAUDE, line, budget=logs.Budget(values=10)) == ([], 0)
