"""An answer built to cost the masking the most, trickled a byte at a time.

A credentialed echo lets the agent choose what comes back; an upstream that sends it in
one-byte chunks (chunked framing makes each its own event, however the bytes arrive) makes
the masking read each byte on its own. The most a tail may wait is a credential's longest
form begun and escaped three times (``&amp;amp;#x00000067;`` a character: thousands of
bytes); read again whole with each byte after it, such a tail cost the loop some thousand
reads of every byte. What must hold: every byte is read a bounded number of times (counted,
not timed), and what reaches the agent is the same as for the answer in one piece: each
credential in it masked, the rest as it was.
"""

from __future__ import annotations

import pytest

from proxy.scrub import REREAD, Scrubber

SECRETS = (b"ghp_REALGITHUBCANARY0123456789",
           b"eC1hY2Nlc3MtdG9rZW46Z2hwX1JFQUxHSVRIVUJDQU5BUlkwMTIzNDU2Nzg5")
#: The longest form looked for: the Basic value's hex.
LONGEST = max(Scrubber(SECRETS)._forms, key=len)


class Counting(Scrubber):
    """A :class:`Scrubber` that counts the bytes it reads for the credential."""

    read = 0

    def _spans(self, data: bytes, secrets: tuple[bytes, ...] | None = None, *,
               escapes: bool = True) -> tuple[bytes, list[tuple[int, int]]]:
        self.read += len(data)
        return super()._spans(data, secrets, escapes=escapes)


def amp3(text: bytes) -> bytes:
    return b"".join(b"&amp;amp;#x%08x;" % c for c in text)


def pct3(text: bytes) -> bytes:
    return b"".join(b"%%2525%02x" % c for c in text)


#: Each hostile answer: a form's beginning, escaped to the limit, broken off before its last
#: character (so it waits whole, then goes on), over and over; and at the end the whole
#: credential so spelled, which must come out masked.
HOSTILE = {
    "html thrice": (amp3(LONGEST[:-1]) + b"!", amp3(SECRETS[0])),
    "url thrice": (pct3(LONGEST[:-1]) + b"!", pct3(SECRETS[0])),
    "json thrice": (b"".join(b"\\\\\\\\u%04x" % c for c in LONGEST[:-1]) + b"!",
                    b"".join(b"\\\\\\\\u%04x" % c for c in SECRETS[0])),
    "token prefix": (SECRETS[0][:-1] + b" ", SECRETS[0]),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_answer_trickled_is_read_a_bounded_number_of_times(name: str) -> None:
    unit, secret = HOSTILE[name]
    body = unit * 8 + secret + b"\n" + unit * 2
    whole = Scrubber(SECRETS)
    expected = whole.feed(body) + whole.finish()
    assert secret not in expected and whole.masked == 1  # the control: masked in one piece

    scrub = Counting(SECRETS)
    out = b"".join(scrub.feed(body[i:i + 1]) for i in range(len(body))) + scrub.finish()

    assert out == expected
    assert scrub.masked == 1
    # Each byte read a few times (a tail again with each REREAD th of its length), not once
    # for every byte after it while it waits.
    assert scrub.read <= (REREAD + 2) * len(body), (scrub.read, len(body))


def test_a_short_tail_goes_on_with_the_next_byte() -> None:
    scrub = Scrubber(SECRETS)
    assert scrub.feed(b"x ghp_RE") == b"x "  # may begin the token: waits
    assert scrub.feed(b"!") == b"ghp_RE!"  # the next byte says it does not
    assert not scrub.holding
