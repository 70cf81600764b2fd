"""The fixed spellings of a secret the masking looks for (pure), and how a chunk is read for
them: the secret itself, its spaces as a form writes them, UTF-16, hex and base64
(:func:`encodings`, which an encoder may wrap in lines, their breaks raw or escaped:
:func:`unwrap`), a text in UTF-16 read as its narrow bytes (:func:`narrowed`), and the
bytes a spelling may be made of (:func:`alphabet`, the prefilter's table).
:mod:`proxy.scrub` masks with them.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable

from proxy.unescape import Unescaped

_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def spellings(secret: bytes) -> tuple[bytes, ...]:
    """``secret`` and the fixed byte strings that spell it otherwise: its spaces as a form
    writes them (``+``) and its ``+`` as a form reads them (a space); in UTF-16 (each byte
    and a NUL: the bytes between the first and the last, the same in either order); and
    :func:`encodings`. Longest first, none twice. (:class:`Scrubber` looks for each in any
    case.)"""
    forms = [secret, secret.replace(b" ", b"+"), secret.replace(b"+", b" "),
             b"\0".join(secret[i:i + 1] for i in range(len(secret))), *encodings(secret)]
    return tuple(sorted(dict.fromkeys(forms), key=len, reverse=True))


def encodings(secret: bytes) -> tuple[bytes, ...]:
    """``secret`` in hex, lower and upper case; in base64, both alphabets, after 0, 1 and 2
    bytes of something else. Base64 packs three bytes in four characters, so where the
    secret begins in its group changes every character; at each of the three alignments the
    characters made of the secret's bits alone are fixed (its first and last character may
    share bits with the bytes around it: those, and the padding, are left out). What an
    encoder may wrap in lines (:func:`unwrap`)."""
    forms = [secret.hex().encode(), secret.hex().upper().encode()]
    bits = 8 * len(secret)
    for skip in range(3):
        core = base64.b64encode(b"\0" * skip + secret)[(8 * skip + 5) // 6:(8 * skip + bits) // 6]
        forms += [core, core.translate(_URL_SAFE)]
    return tuple(forms)


#: A line break as a wrapped run of base64 or hex may carry it: raw (``\\n``, ``\\r\\n``,
#: a ``\\r`` alone), escaped as a JSON string (GitHub's contents API returns a file's
#: base64 so), a URL or an HTML page carry it, or an HTML page's own (``<br>``, ``<br/>``,
#: ``<br />``, a raw one after it or not: a page renders a text's lines so, as Django's
#: ``linebreaksbr`` and PHP's ``nl2br`` do); lower-cased (the data is read so), longest
#: first. Spaces or tabs may indent the next line.
BREAKS = (b"&#x0d;&#x0a;", b"&#13;&#10;", b"&#xd;&#xa;", b"<br />\r\n", b"<br/>\r\n",
          b"<br />\n", b"%0d%0a", b"<br>\r\n", b"<br/>\n", b"<br />", b"&#x0a;", b"<br>\n",
          b"<br/>", b"&#xa;", b"&#10;", b"\\r\\n", b"<br>", b"%0a", b"\\n", b"\r\n", b"\n", b"\r")
_B64 = rb"[A-Za-z0-9+/=_-]"
#: A line break inside a run of base64 or hex, as MIME (76) and PEM (64) wrap it, one
#: search a byte a break begins with, each from that byte (the search skips to each: a look
#: behind first, or a set of first bytes, is tried at every byte, some 60 and 170 MB/s on
#: JSON), only where the data holds it; the ``\\r`` of a ``\\r\\n`` is taken in by
#: :func:`unwrap`. The first three (raw, and HTML's ``<br>``) are looked for in any text.
_NEXT = rb"[ \t]*(?=[A-Za-z0-9+/_-])"
_WRAPS = (
    (b"\n", re.compile(rb"\n(?:(?<=" + _B64 + rb"\n)|(?<=" + _B64 + rb"\r\n))" + _NEXT)),
    (b"\r", re.compile(rb"\r(?<=" + _B64 + rb"\r)(?!\n)" + _NEXT)),
    (b"<", re.compile(rb"<(?<=" + _B64 + rb"<)[bB][rR](?: ?/)?>(?:\r?\n)?" + _NEXT)),
    (b"\\", re.compile(rb"\\(?<=" + _B64 + rb"\\)(?:r\\n|n)" + _NEXT)),
    (b"%0", re.compile(rb"%(?<=" + _B64 + rb"%)0(?:[dD]%0[aA]|[aA])" + _NEXT)),
    (b"&#", re.compile(rb"&(?<=" + _B64 + rb"&)#(?:13;&#10;|10;|[xX]0?[dD];&#[xX]0?[aA];"
                       rb"|[xX]0?[aA];)" + _NEXT)))
#: What may end a line that an encoder wrapped and the next line goes on: its break may be
#: cut anywhere.
WRAPPED_END = re.compile(
    _B64 + b"(?:" + b"|".join(re.escape(b[:i]) + (rb"[ \t]*" if i == len(b) else b"")
                              for b in BREAKS for i in range(len(b), 0, -1)) + rb")?\Z",
    re.IGNORECASE)
#: The bytes a break begins with: a text holding none holds no break.
_BREAK_LEADS = (b"\n", b"\r", b"<", b"\\", b"%0", b"&#")


def broken(data: bytes) -> bool:
    """Whether ``data`` may hold a line break of :data:`BREAKS` (a few passes of
    ``memchr``, where the search for one is a regular expression's)."""
    return any(lead in data for lead in _BREAK_LEADS)


def unwrap(data: bytes, escaped: bool = True) -> Unescaped | None:
    """``data`` with the line breaks inside a run of base64 or hex taken out (and what
    indents the next line), each traced (as an escape that stands for nothing), or None when
    it holds none; its escaped breaks only where it may hold an escape (``escaped``: the
    caller knows, and a look for each costs as much as the rest)."""
    breaks = sorted(match.span() for lead, wrap in _WRAPS[:None if escaped else 3]
                    if lead in data for match in wrap.finditer(data))
    if not breaks:
        return None
    parts: list[bytes] = []
    at: list[int] = []
    spans: list[tuple[int, int]] = []
    done = length = 0
    for lead, end in breaks:
        start = lead - (data[lead] == 0x0A and data[lead - 1] == 0x0D)  # the \r of a \r\n
        parts.append(data[done:start])
        length += start - done
        at.append(length)
        spans.append((start, end))
        done = end
    parts.append(data[done:])
    return Unescaped(text=b"".join(parts), at=tuple(at), size=(0,) * len(at),
                     spans=tuple(spans), end=len(data))


_NULS = re.compile(rb"\0+")


def narrowed(data: bytes) -> Unescaped | None:
    """``data`` with its NULs taken out, each run traced (as an escape that stands for
    nothing), or None when it holds none: a text in UTF-16 (either order, a byte-order mark
    or not) read as the bytes of its ASCII characters, so that its escapes, hex and base64
    read as in UTF-8 (a character past ASCII reads as bytes that spell no credential).
    ``data.replace(b"\\0", b"")`` is its text, for a caller that traces nothing yet."""
    if b"\0" not in data:
        return None
    at: list[int] = []
    spans: list[tuple[int, int]] = []
    done = length = 0
    for match in _NULS.finditer(data):
        length += match.start() - done
        at.append(length)
        spans.append(match.span())
        done = match.end()
    return Unescaped(text=data.replace(b"\0", b""), at=tuple(at), size=(0,) * len(at),
                     spans=tuple(spans), end=len(data))


#: The bytes escapes are written with, at any level (``unescape.ESCAPE``): ``\\``,
#: ``%``, ``&``, ``#``, ``;``, ``/``, hex digits and the letters of ``\\u``, ``&#x`` and
#: the named references.
_ESCAPE_BYTES = frozenset(b"\\%&#;/0123456789abcdefghijklmnopqrstuvwxyz"
                          b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def alphabet(forms: Iterable[bytes]) -> bytes:
    """A ``bytes.translate`` table: ``a`` for a byte a spelling of ``forms`` may hold (theirs
    and the escapes'), a space for any other."""
    inside = _ESCAPE_BYTES.union(*forms)
    return bytes(0x61 if byte in inside else 0x20 for byte in range(256))


@functools.lru_cache(maxsize=128)
def firsts(forms: tuple[bytes, ...]) -> bytes:
    """The bytes ``forms`` begin with: an end of a chunk without one of them begins none (a
    long body's chunks end anywhere; each end is read for them in one pass, not one a form)."""
    return bytes(sorted({form[0] for form in forms}))
