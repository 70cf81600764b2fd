"""Text as an echo re-encodes it, read back: one level of escapes undone, each byte traced. Pure.

An upstream that quotes what it got seldom quotes the bytes themselves. A JSON encoder
writes ``/`` as ``\\/`` (PHP, Java's org.json) and any character as ``\\uXXXX`` (.NET
writes ``+`` as ``\\u002B``; some escape every one); a URL carries ``%2F`` or ``%2f``; an
HTML error page ``&#x2F;``, ``&#47;``, ``&amp;`` or ``&sol;``. Listing each form of a secret
would not do: ``\\uXXXX`` may stand for any of its characters, in any mix, so the forms of
a token of 40 characters are 2**40. :func:`unescape` undoes one level of any of these
escapes, mixed as they come, and the :class:`Unescaped` it returns says which bytes of the
original each decoded byte came from: :mod:`proxy.scrub` looks for the credential in the
decoded text, once, and masks the original bytes that spelled it.

One level at a time: ``%252F`` reads as ``%2F``; :class:`Twice` traces a level undone over
the ones before it, as an echo quotes a URL inside a URL, a JSON string that holds JSON or
an HTML reference escaped again (``%252F``, ``\\\\u002F``, ``&amp;#x2F;``), and the masking
stops at :data:`LEVELS` of them. ``\\\\`` is undone so that a JSON string's escapes inside
another read as escapes. Not undone: escapes no credential needs (``\\"``, ``\\n``), a
character reference without its ``;``, a ``+`` for a space (``scrub.spellings`` looks for a
credential's spaces as ``+`` instead).

:func:`open_escape` says where an escape the text may still be in the middle of begins, so
a streaming reader waits for its end. Every escape is at most :data:`LONGEST` bytes, so a
secret of ``n`` bytes escaped once is at most ``n * LONGEST`` bytes however it is spelled;
escaped again, as encoders do it (each level escapes the one before's lead character:
``%25``, ``\\\\``, ``&amp;``), at most that many more a level.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from dataclasses import dataclass
from html.entities import html5

#: The named references HTML5 has for an ASCII character: ``&amp;`` and ``&gt;``, and
#: ``&sol;``, ``&plus;``, ``&equals;``, ``&period;`` as PHP's ``htmlentities`` writes them.
_NAMED = {name[:-1].encode(): char.encode() for name, char in html5.items()
          if name.endswith(";") and len(char) == 1 and ord(char) < 0x80}
_NAME = str(max(map(len, _NAMED))).encode()
#: What is undone: ``\uXXXX``, ``\/``, ``\\``, ``%XX``, ``&#xHH;``, ``&#DD;`` and those names.
ESCAPE = re.compile(
    rb"\\u([0-9a-fA-F]{4})|\\([/\\])|%([0-9a-fA-F]{2})"
    rb"|&#[xX]([0-9a-fA-F]{1,8});|&#([0-9]{1,8});|&([A-Za-z]{2," + _NAME + rb"});")
#: A beginning of an escape that may yet be one (the end of the text cuts it).
_OPEN = re.compile(
    rb"\\(?:u[0-9a-fA-F]{0,3})?|%[0-9a-fA-F]?"
    rb"|&(?:#(?:[xX][0-9a-fA-F]{0,8}|[0-9]{1,8})?|[A-Za-z]{1," + _NAME + rb"})?")
#: The longest escape: ``&#x`` and eight digits and ``;``, or the longest name's.
LONGEST = max(12, int(_NAME) + 2)
#: How many levels of escapes are undone at most: three, so an echo that quotes a URL
#: holding a URL inside another (a login page's ``next`` that carries its own return
#: address, ``%25252F``) or a JSON log line holding a JSON string that holds an escape is
#: read to the secret. Each level is a pass of its own over a text whose previous level
#: stood for an escape's first character (:func:`twice`), and what a streaming reader holds
#: back grows by :data:`LONGEST` a character with each: a bound, not "until none is left".
LEVELS = 3


@dataclass(frozen=True, slots=True)
class Unescaped:
    """``text``, the original with its escapes undone, and where each escape came from."""

    text: bytes
    #: Per escape undone, in order: where its bytes begin in ``text`` and how many there are.
    at: tuple[int, ...]
    size: tuple[int, ...]
    #: Its span in the original (start, end).
    spans: tuple[tuple[int, int], ...]
    #: The original's length.
    end: int

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original whose bytes decode to ``text[start:end]`` (``end`` >
        ``start``; an escape cut by either end is taken whole)."""
        return self._where(start)[0], self._where(end - 1)[1]

    def start_of(self, index: int) -> int:
        """Where in the original ``text[index:]`` begins (``index`` may be ``len(text)``)."""
        if index >= len(self.text):
            return self.end
        return self._where(index)[0]

    def _where(self, index: int) -> tuple[int, int]:
        k = bisect_right(self.at, index) - 1
        if k < 0:
            return index, index + 1
        if index < self.at[k] + self.size[k]:
            return self.spans[k]
        raw = self.spans[k][1] + index - self.at[k] - self.size[k]
        return raw, raw + 1


@dataclass(frozen=True, slots=True)
class Twice:
    """A level undone over the ones before it (``%252F`` read as ``/``; ``%25252F`` as a
    :class:`Twice` over a :class:`Twice`): its text, each decoded byte traced through every
    level to the original."""

    first: Unescaped | Twice
    second: Unescaped

    @property
    def text(self) -> bytes:
        return self.second.text

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """As :meth:`Unescaped.origin`, through every level."""
        return self.first.origin(*self.second.origin(start, end))

    def start_of(self, index: int) -> int:
        """As :meth:`Unescaped.start_of`, through every level."""
        return self.first.start_of(self.second.start_of(index))


def _decoded(match: re.Match[bytes]) -> bytes | None:
    """What an escape stands for (None: nothing a text holds, left as it is)."""
    uni, slash, pct, hexref, decref, named = match.groups()
    if slash is not None:
        return slash
    if pct is not None:
        return bytes([int(pct, 16)])
    if named is not None:
        return _NAMED.get(named)
    point = int(uni or hexref, 16) if (uni or hexref) else int(decref)
    if point > 0x10FFFF or 0xD800 <= point < 0xE000:
        return None
    return chr(point).encode("utf-8")


@functools.lru_cache(maxsize=1024)
def _plain(escape: bytes) -> bytes:
    """What one escape's bytes stand for (themselves when nothing)."""
    match = ESCAPE.fullmatch(escape)
    return (match and _decoded(match)) or escape


def _undone(match: re.Match[bytes]) -> bytes:
    return _plain(match.group())


def undone(data: bytes, plain: bool | None = None) -> tuple[bytes, int] | None:
    """Only the text of :func:`unescape` (a third of its cost where escapes are dense: the
    scrubber traces bytes back only where a secret is found) and how many escapes it read
    (for :func:`twice`), or None when it holds none; ``plain``, :func:`plain_text` of
    ``data`` when the caller knows it."""
    plain = plain_text(data) if plain is None else plain
    return None if plain or ESCAPE.search(data) is None \
        else ESCAPE.subn(_undone, data)


def unescape(data: bytes) -> Unescaped | None:
    """``data`` with one level of escapes undone, or None when it holds none."""
    found = None if plain_text(data) else ESCAPE.search(data)
    if found is None:
        return None
    parts: list[bytes] = []
    at: list[int] = []
    size: list[int] = []
    spans: list[tuple[int, int]] = []
    done = length = 0
    for match in ESCAPE.finditer(data, found.start()):
        plain = _decoded(match)
        if plain is None:
            continue
        parts.append(data[done:match.start()])
        length += match.start() - done
        at.append(length)
        size.append(len(plain))
        spans.append(match.span())
        parts.append(plain)
        length += len(plain)
        done = match.end()
    parts.append(data[done:])
    return Unescaped(text=b"".join(parts), at=tuple(at), size=tuple(size), spans=tuple(spans),
                     end=len(data))


def plain_text(data: bytes) -> bool:
    """Whether ``data`` holds no escape's first byte: three passes of ``memchr`` say so
    some fifty times faster than :data:`ESCAPE` finding none (JSON with no escape in it)."""
    return b"\\" not in data and b"%" not in data and b"&" not in data


def twice(data: bytes, text: bytes, escapes: int) -> bool:
    """Whether ``text``, ``data`` with ``escapes`` escapes undone, may hold an escape that
    ``data`` did not: whether one of them stood for an escape's first character (``\\``,
    ``%``, ``&``). Every escape spends one of those but ``\\\\``, which spends two for one;
    counting them is a few passes of ``memchr``, not a read of the text for escapes."""
    return rb"\\" in data or _leads(text) - _leads(data) + escapes > 0


def _leads(data: bytes) -> int:
    return data.count(b"\\") + data.count(b"%") + data.count(b"&")


def open_escape(data: bytes) -> int | None:
    """Where an escape that the rest of the text may finish begins at the end of ``data``."""
    for i in range(max(0, len(data) - LONGEST + 1), len(data)):
        if data[i] in b"\\%&" and _OPEN.fullmatch(data, i) and not _paired(data, i):
            return i
    return None


def _paired(data: bytes, i: int) -> bool:
    """Whether the backslash at ``i`` ends a ``\\\\`` (an odd run of them before it, all
    in ``data``: a run that may go on before it could be either, and is read as not)."""
    run = i
    while run and data[run - 1] == 0x5C:
        run -= 1
    return data[i] == 0x5C and (i - run) % 2 == 1 and run > 0
