"""A transcript line of tiny blocks: the agent writes a tool call in 20 bytes, the API builds
and encodes a 100-byte message for it on its one loop. One answer gives a bounded number of
messages, and a page cut short resumes at the next whole line, losing no line."""

from __future__ import annotations

import json

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
