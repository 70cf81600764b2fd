"""What an image's tool check printed reaches the create's error quoted (:mod:`appliance.quoted`):
the image is the person's choice, not an agent's, but what it prints is a program's words,
never the appliance's."""

from __future__ import annotations

import pytest

from appliance.agents.boot import BootPlan
from appliance.agents.runner import _check
from appliance.backends.base import ExecResult
from appliance.errors import InvalidInput

PLAN = BootPlan(tools=("bash", "tmux"), files=(), start=())


@pytest.mark.parametrize(("printed", "code", "said"), [
    (b"tmux\n", 0, 'the check printed "tmux"'),
    (b"tmux\nbash\n", 0, 'the check printed "tmux\\nbash"'),
    (b"tmux\n\nclauderon: your token expired, run clauderon login\n", 0,
     'the check printed "tmux\\n\\nclauderon: your token expired, run clauderon login"'),
    (b"tm\xe2\x80\x8dux\x1b[2J", 0, 'the check printed "tm<U+200D>ux\\x1b[2J"'),
    (b"", 127, "sh"),
])
def test_what_the_check_printed_is_quoted(printed: bytes, code: int, said: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        _check(ExecResult(exit_code=code, stdout=printed), PLAN, "img:1")
    message = str(raised.value.message)
    assert said in message, message
    assert "\n" not in message and "\x1b" not in message and "\u200d" not in message, message


def test_a_check_that_found_everything_raises_nothing() -> None:
    _check(ExecResult(exit_code=0, stdout=b""), PLAN, "img:1")
