"""Masking what a traced reading found, in the original's bytes (pure): the spans of a
secret found in a text read otherwise (escapes undone, line breaks or a UTF-16 text's
NULs taken out; :mod:`proxy.unescape`, :mod:`proxy.spellings`) traced back and written over
with ``*``, what keeps the original's shape left as it was. :mod:`proxy.scrub` masks so.
"""

from __future__ import annotations

import re
from bisect import bisect_left

from proxy.unescape import Twice, Unescaped

#: What masking writes over: all but a line break (a wrapped form keeps its lines); in
#: UTF-16, all but its NULs too.
_LINE = re.compile(rb"[^\r\n]")
_WIDE = re.compile(rb"[^\r\n\0]")


def trace(view: Unescaped | Twice, found: bytearray, out: bytearray,
          secrets: tuple[bytes, ...], *,
          keep: tuple[bytes, tuple[tuple[int, int], ...]] = (b"", ())
          ) -> list[tuple[int, int]]:
    """Mask in ``out`` the original bytes of each secret in ``found`` (``view``'s text), and
    in ``found``, so that none is found again inside; the spans of ``out`` masked. The
    original's spans ``keep`` names (a wrapped form's line breaks, escaped too) stay as
    they were, so its lines do."""
    original, breaks = keep
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        i = found.find(secret)
        while i != -1:
            start, end = view.origin(i, i + len(secret))
            out[start:end] = _LINE.sub(b"*", out[start:end])
            for k in range(bisect_left(breaks, (start, start)), len(breaks)):
                if (span := breaks[k])[1] > end:
                    break
                out[span[0]:span[1]] = original[span[0]:span[1]]
            found[i:i + len(secret)] = b"*" * len(secret)
            spans.append((start, end))
            i = found.find(secret, i + len(secret))
    return spans




def widened(view: Unescaped, data: bytes, found: list[tuple[int, int]],
            spans: list[tuple[int, int]]) -> bytes:
    """``data``, a text in UTF-16, with the spans ``found`` in ``view`` (its narrow bytes,
    :func:`proxy.spellings.narrowed`) masked but for their NULs, so it still reads as
    UTF-16; each span of ``data`` masked appended to ``spans``."""
    out = bytearray(data)
    for span in found:
        start, end = view.origin(*span)
        out[start:end] = _WIDE.sub(b"*", out[start:end])
        spans.append((start, end))
    return bytes(out)
