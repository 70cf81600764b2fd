"""What a session's terminal may send to the person's own terminal (pure; no I/O).

An attach joins the container's terminal, whose bytes the agent controls (it owns the tmux
server inside, and can write to the terminal device itself). Terminals act on more than
text: OSC 52 writes the clipboard (a command waiting to be pasted into a shell on the
host), OSC 1337 (iTerm2) and the kitty protocols transfer files, DCS and APC strings carry
graphics and passthrough, ``CSI … t`` moves, resizes and reports the window. None of that
is what a person attaching expects to hand to an agent.

:class:`TerminalFilter` is a byte-level ECMA-48 scanner that keeps what draws a screen —
text, C0 controls, CSI sequences (colours, cursor, modes; window operations, screen
checksums, the primary device attributes query, the kitty keyboard protocol and the modes
that outlive an attach and change the person's keys or terminal excepted), the short escape
sequences (a switch out of UTF-8 excepted) and the OSC 10/11/12 colour queries tmux sends
— and drops every other OSC (the window title too), every DCS, APC, PM and SOS string
whole. Concealed text (SGR 8) is shown: a selection copies it unseen. It keeps its state
between calls (a sequence may be split across reads), and a sequence that never ends is
dropped once it passes :data:`MAX_SEQUENCE` characters: it can hide what follows it until
its end, never more.
The output is UTF-8 (a byte that is not becomes U+FFFD), and C1 controls never pass,
whichever way they are written.
"""

from __future__ import annotations

import codecs
import re
from enum import Enum, auto

ESC, BEL, CAN, SUB = 0x1B, 0x07, 0x18, 0x1A
MAX_SEQUENCE = 4096
#: OSC numbers passed on: none but the colour queries tmux sends. The window and icon titles
#: (0, 1, 2) are dropped: tmux sets none on the person's terminal (its ``set-titles`` is off),
#: so a title that arrives is the agent's own, which outlives the attach (no terminal has to
#: keep a stack of titles to give back) and can name another program ("sudo", "ssh prod").
OSC_KEPT: frozenset[str] = frozenset()
OSC_QUERIES = frozenset({"10", "11", "12"})
#: C1 controls (U+0080-U+009F): some terminals act on them as on ESC sequences (U+009D is
#: an OSC in xterm), so they never pass.
NO_C1 = dict.fromkeys(range(0x80, 0xA0))
#: ``ESC %``, then the coding system (DOCS): a terminal told ``ESC % @`` (PuTTY) leaves UTF-8
#: for ISO 8859-1, and reads the bytes 0x80-0x9F inside the UTF-8 the filter writes (the
#: 0x9B of U+011B) as C1 controls. The terminal stays in UTF-8, as the filter writes it.
DOCS = "%"
#: ``ESC SP G`` (S8C1T): the terminal answers in 8-bit controls from then on, which the
#: programs after the attach do not read (tmux never asks it).
EIGHT_BIT = " G"
#: ``ESC k``, then a title, then ST: a window's title in GNU screen, and in tmux (a person's
#: own multiplexer, with ``allow-rename``): read as a string, and dropped like one.
STRINGS = "P_^Xk"
#: CSI finals dropped: ``t`` is xterm's window manipulation (move, resize, report title);
#: ``y`` is a checksum of a rectangle of the screen (``CSI … * y``, DECRQCRA), which some
#: terminals answer: of one cell, that cell's character, so an agent could read back the
#: person's own screen (the normal one holds what they ran before attaching), and DECTST.
CSI_DROPPED = frozenset({ord("t"), ord("y")})
#: The kitty keyboard protocol (``CSI > flags u`` pushes, ``CSI < n u`` pops, ``CSI = flags ;
#: mode u`` sets, ``CSI ? u`` asks): flags left pushed make every key in the person's shell a
#: ``CSI … u`` sequence. tmux reads the person's keys and speaks to the agent itself, so it
#: never asks this of the person's terminal; only the agent would. (``CSI u`` alone, with no
#: mark, restores the cursor: it passes.)
KITTY_KEYS_FINAL, KITTY_KEYS_MARKS = ord("u"), frozenset("<=>?")
#: DEC private modes (``CSI ? … h``/``l``) taken out of the sequences that set them, which
#: would outlive the attach and tmux never sets on the person's terminal: origin mode (6:
#: cursor moves counted inside the scroll region), the alternate scroll mode (1007: the wheel
#: typed as cursor keys), and what changes the person's keys or terminal: no key repeat (8),
#: backspace as BS (67), meta and delete keys (1034-1037, 1039), function keys in another
#: terminal's encoding (1050-1053, 1060, 1061), no alternate screen for later programs
#: (1046), the Tektronix window (38), 132 columns (3, 40), the selection to the clipboard
#: (1041), readline's mouse and paste modes (2001-2003, 2005, 2006) and reverse video (5: a
#: person's own would be lost to a reset). Whatever the person had is theirs, so none is
#: given back. XTSAVE and XTRESTORE (``CSI ? … s``/``r``) lose them too: xterm restores a mode
#: never saved as off.
MODES_DROPPED = frozenset({3, 5, 6, 8, 38, 40, 67, 1007, 1034, 1035, 1036, 1037, 1039, 1041,
                           1046, 1050, 1051, 1052, 1053, 1060, 1061, 2001, 2002, 2003, 2005,
                           2006})
#: ANSI modes (``CSI … h``/``l``, no mark) passed: insert (4) alone, which tmux uses.
#: Others lock the keyboard (2, KAM), echo every key on the screen (12, SRM: a password
#: typed after the attach shown) or make Enter send CR LF (20, LNM).
ANSI_MODES_KEPT = frozenset({4})
#: ``CSI > resource ; value m`` (XTMODKEYS) passes for modifyOtherKeys (4) alone, which tmux
#: sets and the restore gives back; the others change how keys with modifiers arrive. ``CSI >
#: … n`` turns them off, and DECSCL (``CSI … " p``) soft-resets the terminal into another
#: conformance level, perhaps 8-bit controls: neither passes.
MODIFY_KEYS, MODIFY_OTHER_KEYS = ">m", "4"
CSI_TAILS_DROPPED = (re.compile(r"\x1b\[>[\d;]*n"), re.compile(r'\x1b\[[\d;]*"p'))
MODE_SET = re.compile(r"\x1b\[(\??)([\d;]*)([hlrs])")
#: The primary device attributes query (``CSI c``, ``CSI 0 c``; ``ESC Z`` asks the same),
#: which every terminal answers: the attach asks it alone, once the program has ended, so
#: its answer tells that every answer before it has arrived (``cli/ptyrelay.py``). The
#: secondary one (``CSI > c``) passes: tmux asks it.
DA1_FINAL, DA2_MARK = ord("c"), ">"
#: SGR (``CSI … m``) 8, concealed: the person's terminal draws the text as blanks, and a
#: selection copies it all the same (``echo ok`` on the screen, ``echo ok; curl … | sh`` in
#: what is pasted). It is taken out of the SGR; the rest passes, and a colour's own numbers
#: (``38;5;8``, ``48;2;8;8;8``) are not read as it. An SGR of nothing else goes whole (an
#: empty one would be a reset).
SGR_FINAL, CONCEALED = ord("m"), 8
#: A colour's numbers after 38, 48 or 58: ``5;n`` (the palette), ``2;r;g;b`` (true colour).
SGR_COLOURS, SGR_COLOUR_WIDTH = frozenset({"38", "48", "58"}), {"5": 2, "2": 4}
#: A whole CSI sequence as the scanner reads one (at most 62 parameter and intermediate
#: bytes), matched at once: colours and cursor moves are most of a screen.
CSI_WHOLE = re.compile(r"\x1b\[[\x20-\x3f]{0,62}[\x40-\x7e]")
#: What gives the person's terminal back once an attach ends. The filter passes modes, and
#: a detach leaves them as the container's programs set them (tmux's alternate screen and
#: focus reporting; whatever else the agent chose): ANSI mode first (``CSI ? 2 l`` puts
#: xterm in VT52 mode, which reads none of the rest; ANSI mode ignores ``ESC <``), the normal
#: screen (leaving the alternate one restores the cursor and attributes saved on entering
#: it), then plain text in ASCII, the cursor shown, wrapping, no insert, cursor keys and
#: keypad as a shell reads them (and ctrl-keys as controls, not modifyOtherKeys sequences),
#: and no mouse, focus or bracketed-paste reports typed into the shell. The scroll region is
#: the whole screen again (``CSI r``, between a save and a restore of the cursor: setting it
#: moves the cursor home), synchronised output ends (a terminal would stop drawing) and the
#: cursor has the terminal's own style (``CSI 0 SP q``); the left and right margins end (tmux
#: sets them on terminals that have them). The cursor stays where it is.
RESTORE = (b"\x1b<\x1b[?1049l\x1b7\x1b[r\x1b8\x1b[0m\x1b(B\x1b)B\x1b*B\x1b+B\x0f\x1b[?25h"
           b"\x1b[0 q\x1b[?7h\x1b[4l\x1b[?1l\x1b>\x1b[>4;0m\x1b[?9l\x1b[?1000l\x1b[?1001l"
           b"\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\x1b[?1016l\x1b[?1004l"
           b"\x1b[?2004l\x1b[?2026l\x1b[?69l\x1b[?7727l")


class _State(Enum):
    GROUND = auto()
    ESCAPE = auto()  # after ESC
    ESCAPE_INTERMEDIATE = auto()  # ESC, then 0x20-0x2F bytes (charset designations)
    CSI = auto()
    OSC = auto()
    STRING = auto()  # DCS, APC, PM, SOS: dropped up to their terminator
    STRING_ESCAPE = auto()  # ESC seen inside an OSC or a string: ST or not


class TerminalFilter:
    def __init__(self) -> None:
        self._state = _State.GROUND
        self._seq: list[str] = []  # the sequence being read (for OSC and CSI: to decide)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._in_osc = False  # which string a STRING_ESCAPE belongs to
        self._overlong = False  # an OSC past MAX_SEQUENCE
        self.dropped = 0  # sequences dropped so far

    def feed(self, data: bytes) -> bytes:
        """What of ``data`` may reach the person's terminal."""
        text = self._decoder.decode(data)
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if self._state is _State.GROUND:  # text runs are copied whole
                j = text.find("\x1b", i)
                if j < 0:
                    out.append(text[i:].translate(NO_C1))
                    break
                out.append(text[i:j].translate(NO_C1))
                i = j
                whole = CSI_WHOLE.match(text, i)
                if whole is not None:
                    self._csi_out(whole.group(), out)
                    i = whole.end()
                    continue
            self._step(ord(text[i]), out)
            i += 1
        return "".join(out).encode()

    def _step(self, b: int, out: list[str]) -> None:
        _STEPS[self._state](self, b, out)

    def _ground(self, b: int, out: list[str]) -> None:
        if b == ESC:
            self._start(_State.ESCAPE, b)
        elif not 0x80 <= b < 0xA0:
            out.append(chr(b))

    def _escape(self, b: int, out: list[str]) -> None:
        if b == ord("["):
            self._more(_State.CSI, b)
        elif b == ord("]"):
            self._in_osc = True
            self._more(_State.OSC, b)
        elif chr(b) in STRINGS:
            self._in_osc = False
            self._drop(_State.STRING)
        elif b == ESC:
            self._start(_State.ESCAPE, b)  # a lone ESC before another: dropped
        elif 0x20 <= b <= 0x2F:
            self._more(_State.ESCAPE_INTERMEDIATE, b)
        elif b == ord("Z"):  # DECID: the device attributes query, as an escape
            self._drop(_State.GROUND)
        elif 0x30 <= b <= 0x7E:
            out.append("".join(self._seq) + chr(b))
            self._reset()
        else:  # a control character: the escape is abandoned, the control stays
            self._reset()
            self._step(b, out)

    def _intermediate(self, b: int, out: list[str]) -> None:
        if 0x20 <= b <= 0x2F and len(self._seq) < 8:
            self._seq.append(chr(b))
        elif 0x30 <= b <= 0x7E:
            if self._seq[1] == DOCS or "".join(self._seq[1:]) + chr(b) == EIGHT_BIT:
                self.dropped += 1
            else:
                out.append("".join(self._seq) + chr(b))
            self._reset()
        else:
            self._abandon(b, out)

    def _csi(self, b: int, out: list[str]) -> None:
        if 0x20 <= b <= 0x3F and len(self._seq) < 64:
            self._seq.append(chr(b))
        elif 0x40 <= b <= 0x7E:
            self._csi_out("".join(self._seq) + chr(b), out)
            self._reset()
        else:
            self._abandon(b, out)

    def _osc(self, b: int, out: list[str]) -> None:
        if b == BEL:
            self._end_osc(out)
        elif b == ESC:
            self._state = _State.STRING_ESCAPE
        elif b in (CAN, SUB):
            self._drop(_State.GROUND)
        elif len(self._seq) < MAX_SEQUENCE:
            self._seq.append(chr(b))
        else:  # kept no further, and dropped at its end
            self._overlong = True

    def _csi_out(self, csi: str, out: list[str]) -> None:
        kept = _kept(csi)
        if kept != csi:
            self.dropped += 1
        out.append(kept)

    def _string(self, b: int, out: list[str]) -> None:
        if b == ESC:
            self._state = _State.STRING_ESCAPE
        elif b in (CAN, SUB):  # a DCS ends at ST alone (not BEL: it may carry one)
            self._reset()

    def _string_escape(self, b: int, out: list[str]) -> None:
        if b == ord("\\"):  # ST
            if self._in_osc:
                self._end_osc(out, st=True)
            else:
                self._reset()
        elif self._in_osc:  # anything else cancels the OSC; the ESC starts anew
            self.dropped += 1
            self._start(_State.ESCAPE, ESC)
            self._step(b, out)
        else:
            self._state = _State.STRING

    def _start(self, state: _State, b: int) -> None:
        self._state = state
        self._seq = [chr(b)]

    def _more(self, state: _State, b: int) -> None:
        self._state = state
        self._seq.append(chr(b))

    def _drop(self, state: _State) -> None:
        self.dropped += 1
        self._state = state
        self._seq = []

    def _reset(self) -> None:
        self._state = _State.GROUND
        self._seq = []
        self._in_osc = self._overlong = False

    def _abandon(self, b: int, out: list[str]) -> None:
        """A sequence broken by a byte it cannot hold: dropped; the byte is read afresh."""
        self.dropped += 1
        self._reset()
        self._step(b, out)

    def _end_osc(self, out: list[str], *, st: bool = False) -> None:
        body = "".join(self._seq[2:])  # after ESC ]
        number, _, rest = body.partition(";")
        if not self._overlong and (number in OSC_KEPT
                                   or (number in OSC_QUERIES and rest == "?")):
            out.append(f"\x1b]{body.translate(NO_C1)}" + ("\x1b\\" if st else "\x07"))
        else:
            self.dropped += 1
        self._reset()


def _kept(csi: str) -> str:
    """What of a whole CSI sequence (``ESC [`` to its final) passes: all of it, none of it
    (``""``), or a mode set without the modes the filter drops."""
    final = ord(csi[-1])
    if (final in CSI_DROPPED or (final == DA1_FINAL and not csi.startswith(DA2_MARK, 2))
            or (final == KITTY_KEYS_FINAL and csi[2:3] in KITTY_KEYS_MARKS)):
        return ""
    if any(tail.fullmatch(csi) for tail in CSI_TAILS_DROPPED):
        return ""
    if final == SGR_FINAL and csi[2:3] not in ("<", "=", ">", "?"):
        return _unconcealed(csi)
    if csi[2] + csi[-1] == MODIFY_KEYS:
        return csi if csi[3:-1].split(";", maxsplit=1)[0] == MODIFY_OTHER_KEYS else ""
    mark = csi[2:-1][:1]
    if not ((chr(final) in "hl" and (mark in {"?", ""} or mark.isdigit()))
            or (chr(final) in "rs" and mark == "?")):
        return csi  # not a mode set, save or restore
    modes = MODE_SET.fullmatch(csi)
    if modes is None:  # a mode set that is not numbers: which modes it names is unknown
        return ""
    mark, numbers, final_ = modes.groups()
    params = [p for p in numbers.split(";")
              if (int(p or "0") not in MODES_DROPPED if mark else int(p or "0") in ANSI_MODES_KEPT)]
    return f"\x1b[{mark}{';'.join(params)}{final_}" if params else ""


def _unconcealed(sgr: str) -> str:
    """An SGR without 8 (concealed), read as terminals read one: a parameter is its number
    before any ``:`` sub-parameters, with leading zeros; a colour's numbers are its own."""
    params, kept, i = sgr[2:-1].split(";"), [], 0
    while i < len(params):
        p = params[i]
        if p in SGR_COLOURS and i + 1 < len(params):
            width = SGR_COLOUR_WIDTH.get(params[i + 1], 0)
            kept += params[i:i + 1 + width]
            i += 1 + width
            continue
        head = p.split(":", 1)[0]
        if not (head.isdigit() and int(head) == CONCEALED):
            kept.append(p)
        i += 1
    if len(kept) == len(params):
        return sgr
    return f"\x1b[{';'.join(kept)}m" if kept else ""


_STEPS = {
    _State.GROUND: TerminalFilter._ground,
    _State.ESCAPE: TerminalFilter._escape,
    _State.ESCAPE_INTERMEDIATE: TerminalFilter._intermediate,
    _State.CSI: TerminalFilter._csi,
    _State.OSC: TerminalFilter._osc,
    _State.STRING: TerminalFilter._string,
    _State.STRING_ESCAPE: TerminalFilter._string_escape,
}
