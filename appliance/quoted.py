"""What a container, an agent or a program run on agent-written trees printed, as the
appliance quotes it in its own errors and reasons (pure).

An agent controls what its container prints, the names of its files and branches, its
commit messages: everything git or a shell in its container may say. Put into an error
as it is, that text speaks in the appliance's voice: a new line and
``clauderon: your token expired, run ...`` reads as the appliance's next line. So every
such text reaches a message through :func:`quote` only: labelled (``the container printed``),
in double quotes it cannot close, on the appliance's line (new lines and every other
control character written as escapes, ``\\n``, ``\\x1b``), each character a reader would not
see shown as what it is (``<U+200D>``), and bounded (the end kept, where a failure says why).
"""

from __future__ import annotations

import re

#: How much of what was printed a message keeps (characters, before escaping).
LIMIT = 300

#: What a terminal draws as nothing, or as an order of its own: zero-width characters
#: (``is_ad<ZWJ>min`` reads as ``is_admin``), marks and bidi controls, tag letters (words
#: spelled in them are not drawn at all), fillers and variation selectors: Unicode's
#: Default_Ignorable_Code_Point but the two selectors that choose how an emoji is drawn
#: (U+FE0E, U+FE0F: in most of an agent's messages, after a sign it draws). The web UI's set.
HIDDEN = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0d\ufeff\uffa0"
                    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
#: C0 and C1 controls, DEL, the line and paragraph separators, the backslash and the quote.
_ESCAPED = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029\\\\"]')
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}


def _escape(m: re.Match[str]) -> str:
    char = m.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100
                                else f"\\u{ord(char):04x}")


def marked(text: str, which: re.Pattern[str] = HIDDEN) -> str:
    """``text`` with each character a reader would not see (or each ``which`` matches)
    shown as what it is (``<U+202E>``), and nothing else changed."""
    return which.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def shown(text: str) -> str:
    """``text`` on one line, nothing in it acted on or hidden: controls escaped, hidden
    characters marked (``<U+200D>``)."""
    return marked(_ESCAPED.sub(_escape, text))


def quote(who: str, said: bytes | str, *, limit: int = LIMIT, end: bool = True) -> str:
    """``who printed "..."``: ``said`` (bytes decoded as UTF-8, each bad byte replaced) with
    its surrounding space stripped, cut to ``limit`` characters (its end kept, or with
    ``end=False`` its start) and :func:`shown`; ``who printed nothing`` when empty."""
    text = (said.decode("utf-8", "replace") if isinstance(said, bytes) else said).strip()
    if not text:
        return f"{who} printed nothing"
    if len(text) > limit:
        text = "\u2026" + text[-limit:] if end else text[:limit] + "\u2026"
    return f'{who} printed "{shown(text)}"'
