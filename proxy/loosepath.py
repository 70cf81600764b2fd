"""A request path as the loosest server may read it. Pure.

Beyond :func:`proxy.rules.server_path`'s readings, two spellings some servers still decode:
IIS's ``%uXXXX`` (``%u002e`` is a dot) and overlong UTF-8, a character written in more bytes
than it needs (``%c0%af`` is ``/``, ``%c0%ae`` a dot, ``%e0%80%af`` a slash again), which
lax decoders (old IIS, some Java and PHP ones) take for the character. :func:`loose_path`
decodes both, with the usual escapes, at every level, so that a rule that refuses a path
(``uses.py``) sees it however a server behind reads it. Real non-ASCII names (``caf%C3%A9``)
read as themselves: only an overlong form, never a well-formed one, turns into ASCII.

:func:`folded` reads a path as a server that folds look-alikes does: one that compares
without regard to case as .NET and Java do (by capitals: a dotless i, U+0131, is ``I``, a
long s, U+017F, is ``S``) or normalises to NFKC (a fullwidth k, U+FF4B, is ``k``, a
fullwidth solidus, U+FF0F, a slash), and one that compares by ICU's collation (.NET's
culture-aware ``StartsWith`` and ``Equals``, JavaScript's ``localeCompare``). That weighs
nothing what draws nothing (Unicode's Default_Ignorable_Code_Point: a zero-width space, a
soft hyphen, a BOM, which NFKC_Casefold drops too), and more: a control (a NUL), many a
mark (a Hebrew accent, a musical stem), an Arabic tatweel, characters newer than Python's
Unicode; and a digit of any script (an Arabic-Indic one, U+0661) as its ASCII one. So
every control, format, unassigned and mark character reads as nothing (an accent too, as a
comparison that ignores accents reads it), and a digit as ASCII's. Blind to case (.NET's
``InvariantCultureIgnoreCase``), ICU weighs a letter in a dark frame (U+1F15A) or written
small above another (U+0363) as the letter, and blind to accents a letter with a stroke or
a hook that NFKD leaves on (``ø``, ``ł``) or an eth (``ð``, a ``d``): read so too.
"""

from __future__ import annotations

import functools
import posixpath
import re
import unicodedata
from urllib.parse import unquote_to_bytes

_IIS = re.compile(r"%[uU]([0-9a-fA-F]{4})")
#: A lead byte and its continuation bytes: two, three or four bytes, well-formed or not.
_SEQUENCE = re.compile(rb"[\xc0-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
                       rb"|[\xf0-\xf7][\x80-\xbf]{3}")
#: How many levels of escapes are undone at most (``server_path`` undoes four).
LEVELS = 4
#: Letters and signs ICU weighs nothing: the Hangul fillers (default-ignorable), Arabic's
#: tatweel and its tail fragment, N'Ko's lajanyalan, the Mongolian nirugu, a Vedic sign.
_WEIGHTLESS = frozenset("\u115f\u1160\u3164\uffa0\u0640\ufe73\u07fa\u180a\u1cd3")
#: A Latin letter in a dark frame or written small above another (no NFKD makes it one),
#: which ICU's collation weighs as the letter but for case.
_FRAMED = re.compile(r"(?:COMBINING LATIN SMALL|(?:CROSSED )?NEGATIVE (?:CIRCLED|SQUARED) "
                     r"LATIN CAPITAL|SQUARED LATIN SMALL) LETTER ([A-Z])(?: BELOW)?")
#: A Latin letter with a stroke, a bar, a hook or a tail that no NFKD takes off (``ø``,
#: ``ł``, ``đ``, ``ħ``), an insular one, and an eth (``ð``, a ``d``), which ICU's collation
#: weighs as the letter blind to accents, as it does ``é``.
_STRUCK = re.compile(r"(?:COMBINING )?(?:LATIN|MODIFIER LETTER) (?:CAPITAL|SMALL) (?:LETTER )?"
                     r"(?:INSULAR )?(?:([A-Z])(?: WITH .+| ROTUNDA)?|(ETH))")


def _code_point(sequence: bytes) -> str:
    """The character a UTF-8 sequence stands for, read as a lax decoder reads it (an
    overlong form is its character); one past Unicode reads as its bytes."""
    bits = {2: 0x1F, 3: 0x0F, 4: 0x07}[len(sequence)] & sequence[0]
    for byte in sequence[1:]:
        bits = bits << 6 | byte & 0x3F
    if bits > 0x10FFFF or 0xD800 <= bits <= 0xDFFF:
        return sequence.decode("latin-1")
    return chr(bits)


def lax_utf8(data: bytes) -> str:
    """``data`` read as UTF-8 by a decoder that takes overlong forms; a byte that begins no
    sequence reads as itself (Latin-1)."""
    out: list[str] = []
    done = 0
    for match in _SEQUENCE.finditer(data):
        out.append(data[done:match.start()].decode("latin-1"))
        out.append(_code_point(match.group()))
        done = match.end()
    out.append(data[done:].decode("latin-1"))
    return "".join(out)


def loose_path(target: str) -> str:
    """:func:`decoded_path`, lower-cased."""
    return decoded_path(target).lower()


def decoded_path(target: str) -> str:
    """``target``'s path with ``%uXXXX``, ``%XX`` and overlong UTF-8 decoded (up to
    :data:`LEVELS` times), a backslash as a slash, ``;`` parameters dropped, dot segments
    resolved; in its own case (:func:`folded` reads that: a dotted capital I made small is two
    characters)."""
    path = target.split("?", 1)[0]
    for _ in range(LEVELS):
        decoded = lax_utf8(unquote_to_bytes(_IIS.sub(lambda m: chr(int(m[1], 16)), path)))
        if decoded == path:
            break
        path = decoded
    return _resolved(path)


@functools.lru_cache(maxsize=4096)
def _weighed(char: str) -> str:
    """``char`` as a collation weighs it: nothing for a control, format, unassigned or mark
    character (or one of :data:`_WEIGHTLESS`), a digit's ASCII one for a digit of any
    script, the letter for one of :data:`_FRAMED` or :data:`_STRUCK`, else itself."""
    name = unicodedata.name(char, "")
    if (framed := _FRAMED.fullmatch(name) or _STRUCK.fullmatch(name)) is not None:
        return framed[1] or "d"
    if unicodedata.category(char)[0] in "CM" or char in _WEIGHTLESS:
        return ""
    value = unicodedata.numeric(char, -1.0)
    return str(int(value)) if value in range(10) else char


def folded(read: str) -> str:
    """``read`` (a decoded path) with look-alikes folded: NFKD (a dotted capital I, U+0130,
    is ``I`` and a dot, as Java's ``equalsIgnoreCase`` reads it), what weighs nothing
    dropped and digits as ASCII's (:func:`_weighed`), then small letters, capitals and
    small letters again (a capital sharp s, U+1E9E, is ``ss`` only by way of its small
    one); read again as :func:`loose_path` reads it, since NFKD may make a slash, a
    backslash, a dot or a ``;`` (a fullwidth one)."""
    text = "".join(map(_weighed, unicodedata.normalize("NFKD", read)))
    return _resolved(text.lower().upper().lower())


def unknown(read: str) -> str | None:
    """The first character of ``read`` newer than this Python's Unicode, or None: a
    collation that knows it may weigh it as a letter or a digit (Kaktovik's, U+1D2C1, as a
    ``1``), which :func:`folded` cannot, since it drops it."""
    if read.isascii():  # every ASCII character has been assigned since Unicode 1.1
        return None
    return next((c for c in read if unicodedata.category(c) == "Cn"), None)


def _resolved(path: str) -> str:
    """``path`` with a backslash as a slash, ``;`` parameters dropped, dot segments
    resolved."""
    path = path.replace("\\", "/")
    path = "/".join(segment.split(";", 1)[0] for segment in path.split("/"))
    return "/" + posixpath.normpath("/" + path).lstrip("/")
