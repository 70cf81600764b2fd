"""What an image's tool check printed reaches the create's error only as the tools it asked
about (anything else quoted, :mod:`appliance.quoted`): the image is the person's choice, not
an agent's, but what it prints is a program's words, never the appliance's."""

from __future__ import annotations

import pytest

from appliance.agents.boot import BootPlan
from appliance.agents.runner import _check
from appliance.backends.base import ExecResult
from appliance.errors import InvalidInput

PLAN = BootPlan(tools=("bash", "tmux"), files=(), start=())


@pytest.mark.parametrize(("printed", "code", "said"), [
    (b"tmux\n", 0, "cannot run the agent: tmux not found on PATH"),
    (b"tmux\nbash\n", 0, "cannot run the agent: bash, tmux not found on PATH"),
    # Only the tools it asked about are named; the rest is never the appliance's words.
    (b"tmux\n\nclauderon: your token expired, run clauderon login\n", 0,
     "cannot run the agent: tmux not found on PATH"),
    (b"clauderon: your token expired\n", 0, 'none of the tools it asked for (the check '
     'printed "clauderon: your token expired"): not found'),
    (b"tm\xe2\x80\x8dux\x1b[2J", 0, 'the check printed "tm<U+200D>ux\\x1b[2J"'),
    (b"", 127, "cannot run the agent: sh not found"),
])
def test_the_check_names_only_the_tools_it_asked_for(printed: bytes, code: int,
                                                     said: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        _check(ExecResult(exit_code=code, stdout=printed), PLAN, "img:1")
    message = str(raised.value.message)
    assert said in message, message
    assert "\n" not in message and "\x1b" not in message and "\u200d" not in message, message
    assert "token expired, run" not in message, message


def test_a_check_that_found_everything_raises_nothing() -> None:
    _check(ExecResult(exit_code=0, stdout=b""), PLAN, "img:1")
