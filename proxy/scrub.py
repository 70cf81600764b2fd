"""The person's credential on its way back: masked in the answer. Pure.

The proxy puts a real credential into a request; the answer must never bring it back to the
agent. An upstream that echoes what it got does: a debug or "echo" endpoint, an error that
quotes the header it refused, a list of the account's own tokens, a WebSocket server that
reports the handshake. A :class:`Scrubber` knows what the proxy put in (the credential,
and the header value it rendered, such as Basic's base64) and masks every occurrence in the
answer's head (a field's name too, in any case: HTTP names have none) and body with ``*``
of the same length, so the framing holds and the agent never holds the secret. It masks it
re-encoded too, as an echo quotes it in a JSON string, a URL or an HTML page (``\\/``,
``\\u002B``, ``%2f``, ``&#x2F;``, ``&gt;``, mixed as they come): the text is read once more
with one level of those escapes undone (``unescape.py``), and again with a second and a
third where the one before stood for an escape's first character (``%252F``, ``\\\\u002F``,
``&amp;#x2F;``, ``%25252F``: a URL in a URL in a URL, JSON in a JSON string, a reference
escaped twice; ``unescape.LEVELS`` says why three), and the bytes that spelled the secret
are masked. One pass for every form, not a list of them: ``\\uXXXX`` may stand for
any character, so a token of ``n`` characters has ``2**n`` spellings. What is fixed bytes
per secret is listed once and looked for as the secret is (:mod:`proxy.spellings`): its spaces as
a form writes them (``+``) and its ``+`` as a form reads them, its hex in either case, and
its base64 in either alphabet at each of the three places it may begin in a group of three
bytes (the characters made of its own bits alone: the first and last may share bits with
the bytes around it, and stay, with at most four bits of its first and last byte).

The body is scanned as it streams. Only a chunk's last bytes that could begin a credential
wait for the next chunk (or the body's end), so a secret the upstream splits over two reads
is still whole when it is masked; a chunk that ends in a newline or a brace, as every SSE
event and JSON line does, waits for nothing; an escape the chunk's end cuts waits for its
end. A secret however spelled is at most ``REACH`` bytes a character of its longest form,
which bounds what waits, and a run of the bytes spellings are made of, so only the run that
ends a chunk is read for what may wait (:meth:`Scrubber.ending`); each chunk is read at
most three times, so the cost stays linear in the body. A longer form that holds a shorter
one (a Basic value holds the token's base64) and that the chunk's end cuts waits as it came,
to be masked whole. What was masked is counted: the exchange notes it in the audit line and
raises the session's alert.

A credentialed request asks for its answer uncompressed and whole (``policy.py``); one
compressed all the same is refused (:func:`proxy.bodykind.coding`). A body in UTF-16 is read
as its narrow bytes too (:func:`proxy.spellings.narrowed`), so its escapes, hex and base64
are; what spelled the secret is masked but for its NULs. Not seen: an answer that
re-encodes the credential otherwise (hashed, encrypted, escaped four times, the base64 of
its escaped spelling, quoted-printable cut by a soft break, base32, split by the upstream's
own formatting other than a line break inside its hex or base64). Each form is looked for
in any case, and across such a line break (:func:`proxy.spellings.unwrap`): raw, a CR
alone, escaped as a JSON string, a URL or a page carry it (``\\n``, ``%0A``, ``&#10;``), a
page's ``<br>`` (``<br />``), the next line indented or not; a wrapped form masked keeps its
breaks. A service that streams the agent's own words back a piece at a time could tell it,
by the wait, whether a piece begins the credential: the masking stops echoes, not a
credentialed service built to be an oracle.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from proxy.spellings import (
    WRAPPED_END,
    alphabet,
    broken,
    encodings,
    firsts,
    narrowed,
    spellings,
    unwrap,
)
from proxy.traced import trace, widened
from proxy.unescape import (
    LEVELS,
    LONGEST,
    Twice,
    Unescaped,
    open_escape,
    plain_text,
    twice,
    undone,
    unescape,
)

#: Shorter values are not looked for: they would mask ordinary text (no real credential is).
MIN_SECRET = 8
#: How many bytes a character of a secret escaped ``LEVELS`` times takes at most
#: (``unescape.py``).
REACH = LEVELS * LONGEST
#: A held tail is read again only with at least this many times fewer new bytes than its own
#: (:meth:`Scrubber.feed`): a tail of up to this many bytes goes on with the next byte.
REREAD = 8


@functools.lru_cache(maxsize=64)
def _plan(given: tuple[bytes, ...]) -> tuple[tuple[bytes, ...], tuple[bytes, ...],
                                            tuple[bytes, ...], bytes, bytes]:
    """What a :class:`Scrubber` of ``given`` looks for, once per set of secrets (the same
    for every answer of a session at a host; it was most of a small answer's masking): the
    secrets, longest first (a value that holds another is masked whole); their
    :func:`spellings` lower-cased (so is the data read: a case-folded echo is found); the
    forms an encoder may wrap (:func:`encodings`); what a spelling is made of and its
    least length (:meth:`Scrubber.spells`)."""
    secrets = tuple(sorted({s for s in given if len(s) >= MIN_SECRET}, key=len, reverse=True))
    forms = tuple(sorted({form.lower() for secret in secrets for form in spellings(secret)},
                         key=len, reverse=True))
    wrapped = tuple(sorted({form.lower() for secret in secrets for form in encodings(secret)},
                           key=len, reverse=True))
    table = alphabet((*forms, *(b"\r\n<>" for _ in wrapped[:1])))
    run = b"a" * min((len(form) for form in forms), default=1)
    return secrets, forms, wrapped, table, run


class Scrubber:
    """Masks ``secrets`` in one answer; :meth:`feed` the body's chunks, then :meth:`finish`."""

    __slots__ = ("_forms", "_held", "_run", "_table", "_waiting", "_wrapped", "escapes", "masked",
                 "secrets")

    def __init__(self, secrets: Iterable[bytes]) -> None:
        self.secrets, self._forms, self._wrapped, self._table, self._run = _plan(tuple(secrets))
        self._held = b""
        #: Chunks come since a held tail, too short yet to read it again (:meth:`feed`).
        self._waiting = b""
        #: How many occurrences were masked so far.
        self.masked = 0
        #: Whether the body is read for the credential re-encoded too
        #: (:func:`proxy.bodykind.escapable`): undoing escapes costs a pass of its own, some
        #: forty times the literal search.
        self.escapes = True

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def _mask(self, data: bytes, secrets: tuple[bytes, ...] | None = None, *,
              escapes: bool = True) -> bytes:
        """``data`` with every secret masked (:meth:`_spans`), each counted."""
        data, spans = self._spans(data, secrets, escapes=escapes)
        self.masked += len(spans)
        return data

    def _spans(self, data: bytes, secrets: tuple[bytes, ...] | None = None, *,
               escapes: bool = True) -> tuple[bytes, list[tuple[int, int]]]:
        """``data`` with every secret masked in each of its :func:`spellings`, as their
        bytes and (``escapes``) as an echo re-encodes them, up to three times (``unescape.py``:
        the original bytes that spell one, escapes and all), in UTF-16 too; the spans masked."""
        secrets = self._forms if secrets is None else secrets
        data, spans = self._read(data, secrets, escapes)
        if not escapes or b"\0" not in data:
            return data, spans
        # Read as its narrow bytes (a body in UTF-16): the spans found there, traced back,
        # masked but for their NULs, so the body still reads as UTF-16.
        found = self._read(data.replace(b"\0", b""), secrets, escapes)[1]
        if found and (wide := narrowed(data)) is not None:
            data = widened(wide, data, found, spans)
        return data, spans

    def _read(self, data: bytes, secrets: tuple[bytes, ...], escapes: bool
              ) -> tuple[bytes, list[tuple[int, int]]]:
        """As :meth:`_spans`, its bytes as they come."""
        spans: list[tuple[int, int]] = []
        if not self.spells(data):  # nor as its bytes: one pass, not one a form
            return data, spans
        low = data.lower()
        plain = plain_text(low)  # no escape in it, nor an escaped break: read once for both
        data, low = self._as_bytes(data, low, secrets, plain, spans)
        if not escapes:
            return data, spans
        # Read lower-cased, and so is what each level of escapes stands for (``\\u0052``).
        original, data = data, low
        done = undone(data, plain)
        if done is None:
            return original, spans
        # Each level's text; one more only where the last stood for an escape's first byte.
        texts, before, count = [done[0].lower()], data, done[1]
        while len(texts) < LEVELS and twice(before, texts[-1], count) \
                and (more := undone(texts[-1])) is not None:
            before, count = texts[-1], more[1]
            texts.append(more[0].lower())
        # A wrapped form's escaped characters are undone too (``\\/`` in a JSON string
        # wrapped with ``\\n``): each level's text is read across its line breaks as well.
        wrapped = self._wrapped if secrets is self._forms else ()
        if not any(secret in text for text in texts for secret in secrets) \
                and not any((wrap := unwrap(text)) is not None and form in wrap.text
                            for text in texts for form in wrapped):
            return original, spans
        view = unescape(data)
        assert view is not None  # undone() found an escape
        out, found = bytearray(original), bytearray(view.text.lower())
        spans += trace(view, found, out, secrets)
        spans += self._unwrapped(view, found, out, wrapped, original)
        # Each further level over the ones before, with what they found masked: counted once.
        chain: Unescaped | Twice = view
        for _ in texts[1:]:
            if (level := unescape(bytes(found))) is None:
                break
            chain, found = Twice(chain, level), bytearray(level.text.lower())
            spans += trace(chain, found, out, secrets)
            spans += self._unwrapped(chain, found, out, wrapped, original)
        return bytes(out), spans

    def _as_bytes(self, data: bytes, low: bytes, secrets: tuple[bytes, ...], plain: bool,
                  spans: list[tuple[int, int]]) -> tuple[bytes, bytes]:
        """``data`` (and ``low``, its lower case) with each secret masked where its bytes
        stand, in any case, and where an encoder wrapped it in lines; each span masked
        appended to ``spans``."""
        out: bytearray | None = None
        for secret in secrets:
            if secret in low:
                out = bytearray(data) if out is None else out
                i = low.find(secret)
                while i != -1:
                    spans.append((i, i + len(secret)))
                    out[i:i + len(secret)] = b"*" * len(secret)
                    i = low.find(secret, i + len(secret))
                low = low.replace(secret, b"*" * len(secret))
        if self._wrapped and (wrap := unwrap(low, not plain)) is not None \
                and any(form in wrap.text for form in self._wrapped):
            out = bytearray(data) if out is None else out
            found = bytearray(wrap.text)
            spans += trace(wrap, found, out, self._wrapped, keep=(data, wrap.spans))
            low = bytes(out).lower()
        return (data if out is None else bytes(out)), low

    @staticmethod
    def _unwrapped(view: Unescaped | Twice, found: bytearray, out: bytearray,
                   wrapped: tuple[bytes, ...], original: bytes) -> list[tuple[int, int]]:
        """Mask in ``out`` the wrapped forms in ``found`` (``view``'s text, a level of
        escapes undone) read across its line breaks, the breaks left as they were."""
        if not wrapped or (wrap := unwrap(bytes(found))) is None \
                or not any(form in wrap.text for form in wrapped):
            return []
        breaks = tuple(view.origin(*span) for span in wrap.spans)
        # Masked in ``found`` too, so that the next level does not find them again.
        trace(wrap, bytearray(wrap.text), found, wrapped, keep=(bytes(found), wrap.spans))
        return trace(Twice(view, wrap), bytearray(wrap.text), out, wrapped,
                      keep=(original, breaks))

    def spells(self, data: bytes) -> bool:
        """Whether ``data`` may spell a form re-encoded: a spelling, escaped at any level,
        is a run of the form's own bytes and the bytes escapes are written with, at least as
        long as the form. Finding no such run costs a ``translate`` and a ``find``, where
        undoing the escapes costs a regular expression's pass (a body of random bytes, with
        an escape's first byte every hundred, went through it at some 65 MB/s)."""
        return self._run in data.translate(self._table)

    def head(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The answer's header (or trailer) fields, each name and value masked; as they came
        when none may spell a form (read joined: a run across two only costs the full read)."""
        if b"\0" not in (whole := b" ".join(map(b" ".join, headers))) and not self.spells(whole):
            return list(headers)
        return [(self._name(name), self._mask(value)) for name, value in headers]

    def _name(self, name: bytes) -> bytes:
        """A field's name, the secrets masked in any case (``*`` is a name's character)."""
        low = name.lower()
        out = self._mask(low)  # the forms are lower-cased: HTTP reads names in any case
        return name if out == low else out

    def reason(self, reason: bytes) -> bytes:
        """The status line's reason phrase, masked."""
        return self._mask(reason)

    def feed(self, data: bytes) -> bytes:
        """What of the body so far may go on: masked, less a tail that may begin a secret.
        Chunks shorter than a :data:`REREAD` th of a held tail wait, joined, before it is read
        again: an upstream trickling a byte at a time after a long tail (a credential's start
        escaped thrice) costs a few reads of each byte, not a read of the whole tail a byte."""
        if self._held and (len(self._waiting) + len(data)) * REREAD < len(self._held):
            self._waiting += data
            return b""
        if self._waiting:
            data, self._waiting = self._waiting + data, b""
        raw = self._held + data if self._held else data
        data, spans = self._spans(raw, escapes=self.escapes)
        keep = self._tail(data)
        if spans and (whole := self._tail(raw)) > keep \
                and not any(start < len(raw) - whole < end for start, end in spans):
            # A longer form begins before a shorter one just masked (the token's base64
            # inside a Basic value the chunk cuts): the end waits as it came, to be masked
            # whole, and what was masked in it is counted then.
            keep, cut = whole, len(raw) - whole
            self.masked += sum(1 for start, _ in spans if start < cut)
            self._held = raw[cut:]
            return data[:cut]
        self.masked += len(spans)
        if keep:
            self._held = data[-keep:]
            return data[:-keep]
        self._held = b""
        return data

    @property
    def holding(self) -> bool:
        return bool(self._held or self._waiting)

    def finish(self) -> bytes:
        """What was held back and what waited, masked, once no more of the body comes: a
        tail held as it came (a longer form began in it) may hold a shorter one whole."""
        held, waiting, self._held, self._waiting = self._held, self._waiting, b"", b""
        return self._mask(held + waiting, escapes=self.escapes) if held or waiting else b""

    def _tail(self, data: bytes) -> int:
        """The length of the longest end of ``data`` that may begin one of the secrets: as
        its bytes, or re-encoded (an escape the end cuts may be the next character)."""
        if not self.secrets:
            return 0
        # A secret re-encoded is at most REACH bytes a character: nothing before that
        # many can begin one still open. And what may begin one is made of the bytes a
        # spelling is (:meth:`spells`): only the run of them that ends the data is read,
        # with the byte before it (a backslash or a line break at the run's start reads as
        # in the whole; a further level is read where the run's own escapes stood for an
        # escape's first byte), not the few thousand bytes three levels of escapes reach.
        end = self.ending(data[-REACH * len(self._forms[0]):] if self.escapes
                          else data[-3 * len(self._wrapped[0]):])
        if not end:
            return 0
        best = max(self._begins(end), self._wrapping(end))
        if not self.escapes:
            return best
        best = max(best, len(end) - self._opening(end, LEVELS))
        if (wide := narrowed(end)) is None:
            return best
        text = wide.text  # in UTF-16: where it may begin read as its narrow bytes
        return max(best, len(end) - wide.start_of(
            min(len(text) - self._wrapping(text), self._opening(text, LEVELS))))

    def ending(self, data: bytes) -> bytes:
        """The end of ``data`` that is a run of the bytes a spelling is made of, with the
        byte before it; nothing when ``data`` ends in another. Spaces or tabs that indent a
        line after a break, or in ``<br />``, are read as the run (a wrapped form's)."""
        at = len(data)  # data[at:] is the run so far
        while True:
            if at and self._table[data[at - 1]] == 0x61:
                at = self._start(data, at)
            indent = at
            while indent and data[indent - 1] in b" \t":
                indent -= 1
            if indent == at or not indent or self._table[data[indent - 1]] != 0x61 or (
                    data[indent - 1] not in b"\r\n" and data[indent - 3:indent].lower() != b"<br"):
                return b"" if at == len(data) else data[at - 1:] if at else data
            at = indent

    def _start(self, data: bytes, at: int) -> int:
        """Where the run of a spelling's bytes that ends at ``at`` begins."""
        for size in (64, at):  # most runs are short: a few bytes are translated
            look = data[max(0, at - size):at].translate(self._table)
            if (other := look.rfind(b" ")) != -1:
                return at - len(look) + other + 1
        return 0

    def _opening(self, data: bytes, levels: int) -> int:
        """Where the end of ``data`` that may begin a secret with up to ``levels`` levels of
        escapes undone begins (an escape the end cuts, at any level, included)."""
        cut = open_escape(data)
        done = data if cut is None else data[:cut]
        view = unescape(done)
        if view is None:
            return len(done) - self._begins(done)
        # This level's text: where a secret may begin in it, or in it read once more.
        text = view.text
        at = len(text) - max(self._begins(text), self._wrapping(text))
        if levels > 1 and twice(done, text, len(view.spans)):
            at = min(at, self._opening(text, levels - 1))
        return view.start_of(at)

    def _wrapping(self, data: bytes) -> int:
        """The length of the longest end of ``data`` that begins a form an encoder wraps in
        lines, read across its line breaks: its last line too, when it ends in one."""
        end = data[-3 * len(self._wrapped[0]):]
        if not broken(end):
            return 0
        tail = WRAPPED_END.search(end)
        core = end[:len(end) - len(tail.group()) + 1] if tail else end
        view = unwrap(core)
        if view is None:
            begins = self._begins(core, self._wrapped) if tail else 0
            return begins + len(end) - len(core) if begins else 0
        begins = self._begins(view.text, self._wrapped)
        return len(end) - view.start_of(len(view.text) - begins) if begins else 0

    def _begins(self, data: bytes, forms: tuple[bytes, ...] | None = None) -> int:
        """The length of the longest end of ``data`` that begins one of ``forms``, in any case."""
        forms = self._forms if forms is None else forms
        data, best = data[-len(forms[0]):].lower(), 0
        if len(data.translate(None, firsts(forms))) == (size := len(data)):
            return 0  # no byte of it begins a form: one pass, not one a form
        for secret in forms:
            first = secret[:1]
            i = data.find(first, max(0, size - len(secret) + 1))
            while i != -1:
                if secret.startswith(data[i:]):
                    best = max(best, size - i)
                    break
                i = data.find(first, i + 1)
        return best


def masked(text: str, secrets: Iterable[bytes]) -> str:
    """``text`` (an error that quotes what an upstream sent) with the secrets masked."""
    scrub = Scrubber(secrets)
    if not scrub:
        return text
    data = text.encode("utf-8", "surrogateescape")
    return (scrub.feed(data) + scrub.finish()).decode("utf-8", "surrogateescape")
