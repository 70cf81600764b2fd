"""Whether the person's terminal answers a device-attributes query (pure; no I/O).

An attach ends by asking the terminal its primary device attributes and waiting for the
answer, which follows every answer to the agent's queries (``cli/ptyrelay.py``). A terminal
that answers no such query would make every attach's end wait the whole
:data:`LEARN_SECONDS`, so the relay asks once as the attach starts: :class:`FirstAnswer`
takes the answer out of the keys it passes to the program (the program did not ask), and
:func:`barrier_deadline` decides the end: a terminal that answered is waited for; one that
has had :data:`LEARN_SECONDS` since the question and not answered is asked nothing more;
in between (a short attach over a slow link), the end waits for both answers, until the
first question is that old or, once it is answered, for the second as long.
"""

from __future__ import annotations

import re

#: How long a terminal may take to answer a question before it is taken to answer none.
LEARN_SECONDS = 5.0
#: The primary device attributes query, and its answer (``CSI ? … c``; in C1 form once the
#: terminal sends 8-bit controls).
QUERY = b"\x1b[c"
ANSWER = re.compile(rb"(?:\x1b\[|\x9b)\?[\d;]*c")
#: The answer to the first question, among keys typed before it: in the 7-bit form alone (a
#: C1 byte among keys is a part of a UTF-8 character; the agent has not yet written a byte).
FIRST = re.compile(rb"\x1b\[\?[\d;]*c")
#: The beginning of an answer at the end of what was read: held until the rest arrives (or
#: until no more arrives for :data:`HOLD_SECONDS`: then it was keys, a lone escape).
PARTIAL = re.compile(rb"\x1b(?:\[(?:\?[\d;]*)?)?\Z")
HOLD_SECONDS = 0.05


class FirstAnswer:
    """The keys as typed, less the terminal's answer to the relay's own first question."""

    def __init__(self) -> None:
        self.answered = False
        self._held = b""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, keys: bytes) -> bytes:
        if self.answered:
            return keys
        data, self._held = self._held + keys, b""
        whole = FIRST.search(data)
        if whole is not None:
            self.answered = True
            return data[:whole.start()] + data[whole.end():]
        partial = PARTIAL.search(data)
        if partial is not None:
            self._held = data[partial.start():]
            return data[:partial.start()]
        return data

    def flush(self) -> bytes:
        """What was held, once nothing followed it: keys."""
        held, self._held = self._held, b""
        return held


def barrier_deadline(answered: bool, asked: float, now: float) -> tuple[float, int] | None:
    """When the end stops waiting, and how many answers it waits for (the first question's,
    if it is still owed, and the barrier's); None: ask nothing, the terminal answers none.
    ``asked``: when the first question went out; ``now``: the attach's end."""
    if answered:
        return now + LEARN_SECONDS, 1
    if now - asked >= LEARN_SECONDS:
        return None
    return asked + LEARN_SECONDS, 2
