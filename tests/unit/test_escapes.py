"""What a session's terminal may send to the person's terminal: a table of sequences, each
fed whole and cut at every byte, in the manner of a parser's table tests."""

from __future__ import annotations

import pytest

from cli.escapes import MAX_SEQUENCE, RESTORE, TerminalFilter

E = "\x1b"
KEPT = [
    ("plain text, tabs and new lines\r\n\t", None),
    ("h\u00e9llo \u4e16\u754c \U0001f600", None),  # UTF-8 of every width
    (f"{E}[1;31mred{E}[0m", None),  # SGR
    (f"{E}[?1049h{E}[H{E}[2J{E}[?25l{E}[38;2;1;2;3m", None),  # modes, cursor, colour
    (f"{E}[?2026h{E}[?2026l", None),  # synchronised output (tmux)
    (f"{E}[>4;1m{E}[>4m{E}[m", None),  # modifyOtherKeys (tmux), SGR reset
    (f"{E}[>c{E}[>0q{E}[6n", None),  # the queries tmux asks
    (f"{E}[2 q", None),  # cursor style (an intermediate)
    (f"{E}[{'1;' * 31}m", None),  # the longest CSI kept: 62 bytes before its final
    (f"{E}7{E}8{E}={E}>{E}M{E}(B{E})0", None),  # short escapes, charsets
    (f"{E}[u{E}[s", None),  # the cursor saved and restored (SCO), not kitty keys
    (f"{E}[?1049;1000h{E}[?7l{E}[?h", None),  # mode sets that name no mode dropped
    # The scroll region (tmux scrolls in one: given back at the end), the cursor saved (SCO),
    # a mode saved and restored (XTSAVE, XTRESTORE), 7-bit controls.
    (f"{E}[3;10r{E}[r{E}[s{E}[?1049s{E}[?1049r{E} F", None),
    # Insert, left and right margins, mintty's escape key: tmux sets them (the margins on
    # terminals that have them); given back at the end.
    (f"{E}[4h{E}[4l{E}[?69h{E}[5;20s{E}[?7727h", None),
    (f"{E}]11;?\x07", None),  # background colour query
    ("bell\x07", None),
]
DROPPED = [
    (f"a{E}]52;c;ZXZpbA==\x07b", "ab"),  # the clipboard
    (f"a{E}]52;c;ZXZpbA=={E}\\b", "ab"),
    (f"a{E}]1337;File=name=eA==;inline=0:aGk=\x07b", "ab"),  # iTerm2 file transfer
    (f"a{E}]8;;https://evil.example/\x07link{E}]8;;\x07b", "alinkb"),  # hyperlinks
    (f"a{E}]9;notify\x07{E}]777;notify;x;y\x07b", "ab"),  # notifications
    (f"a{E}]11;rgb:0/0/0\x07b", "ab"),  # a colour set, not a query
    # The palette, text, background and cursor colours set (text hidden in the background's
    # colour), each spelling, and their restores: none is the person's terminal's to take.
    (f"a{E}]4;1;rgb:01/02/03\x07b{E}]4;1;?;2;#000\x07c", "abc"),
    (f"a{E}]10;#010203{E}\\b{E}]10;?;#010203\x07c{E}]12;red\x07d", "abcd"),
    (f"a{E}]104;1\x07b{E}]110\x07c{E}]111\x07d{E}]112\x07e", "abcde"),
    (f"a{E}Ptmux;{E}{E}]52;c;eA==\x07{E}\\b", "ab"),  # tmux passthrough
    (f"a{E}P+q544e{E}\\b", "ab"),  # DCS
    (f"a{E}_Gf=100;AAAA{E}\\b", "ab"),  # APC (kitty graphics)
    (f"a{E}^pm{E}\\{E}Xsos{E}\\b", "ab"),  # PM, SOS
    (f"a{E}[21tb{E}[8;1;1t", "ab"),  # window report, resize
    # A checksum of a rectangle of the screen (DECRQCRA), which some terminals answer: of
    # one cell, it is that cell's character, so the person's own screen could be read back.
    (f"a{E}[1;1;1;1;1;1*yb{E}[4;1yc", "abc"),  # ...and DECTST's self-test
    # The primary device attributes query: the attach asks it itself once the program ends,
    # and waits for its answer (which follows every other), so none other may be asked.
    (f"a{E}[cb{E}[0cc{E}Zd", "abcd"),
    ("a\u009d52;c;eA==\u009cb", "a52;c;eA==b"),  # C1 controls, as UTF-8
    (f"a{E}]10;rgb:0/0/0\u009c\u009d52;c;eA==\x07b", "ab"),  # C1 in an OSC
    # The window and icon titles: the agent's, kept after the attach, and a spoof.
    (f"a{E}]0;sudo\x07b{E}]1;icon{E}\\c{E}]2;ssh prod\x07d", "abcd"),
    # The kitty keyboard protocol: push, pop, set, ask; with and without parameters.
    (f"a{E}[>1ub{E}[>31uc{E}[<ud{E}[<5ue{E}[=1;1uf{E}[?ug", "abcdefg"),
    # Origin mode, left and right margins, the alternate scroll mode: taken out of a mode set,
    # the rest of it kept.
    (f"a{E}[?6hb{E}[?1049;6;1000hc{E}[?69;1007ld{E}[?0006h", f"ab{E}[?1049;1000hc{E}[?69ld"),
    # Modes that change the person's keys or terminal after the attach: no key repeat,
    # backspace as BS, meta keys, another terminal's function keys, no alternate screen,
    # the Tektronix window, 132 columns, readline's paste mode.
    (f"a{E}[?8lb{E}[?67hc{E}[?1036;1039ld{E}[?1051;1060he{E}[?1046lf{E}[?38hg{E}[?3;40h"
     f"h{E}[?2005hi", "abcdefghi"),
    # ANSI modes but insert: the keyboard locked (KAM), every key echoed (SRM), Enter as CR LF.
    (f"a{E}[2hb{E}[12lc{E}[20;4hd{E}[he", f"abc{E}[4hde"),
    # Reverse video (a reset would lose the person's own); XTRESTORE of a dropped mode
    # (xterm restores one never saved as off), XTSAVE: the rest of them kept.
    (f"a{E}[?5hb{E}[?8;1049rc{E}[?67sd", f"ab{E}[?1049rcd"),
    # XTMODKEYS but modifyOtherKeys, turning them off, DECSCL (perhaps 8-bit controls).
    (f"a{E}[>1;3mb{E}[>2;1mc{E}[>md{E}[>4ne{E}[62;0\"pf{E}[>4;2m", f"abcdef{E}[>4;2m"),
    # 8-bit controls (S8C1T); screen's and tmux's window title, up to ST.
    (f"a{E} Gb{E}ksudo{E}\\c", "abc"),
    # Concealed text (SGR 8), which a selection copies unseen into what the person pastes:
    # taken out, however spelled; a colour's own 8s and the rest of the SGR kept.
    (f"a{E}[8mb{E}[08mc{E}[8:0md{E}[0;8me", f"abcd{E}[0me"),
    (f"a{E}[1;8;31mb{E}[38;5;8;8mc{E}[48;2;8;8;8;8;1md", f"a{E}[1;31mb{E}[38;5;8mc"
     f"{E}[48;2;8;8;8;1md"),
    (f"a{E}[38:2::8:8:8;8mb{E}[38;5mc", f"a{E}[38:2::8:8:8mb{E}[38;5mc"),
    (f"a{E}[?6:1hb", "ab"),  # a mode set that is not numbers
    (f"a{E}]52;c;eA==\x18b", "ab"),  # CAN ends an OSC, dropped
    (f"a{E}]52;c;{E}[31mb", f"a{E}[31mb"),  # an OSC broken by an ESC: the ESC starts anew
    (f"a{E}[1;\x00b", "a\x00b"),  # a CSI broken by a control: dropped, the control kept
    (f"a{E}[{'1;' * 31}1m", "a1m"),  # one byte longer: dropped where it overflows
    # Another coding system (DOCS): a terminal that leaves UTF-8 for ISO 8859-1 on ESC % @
    # (PuTTY) reads the 0x9B in the UTF-8 of "\u011b" as a CSI, so every C1 control passed.
    (f"a{E}%@\u011b8;1;1t{E}%Gb{E}%/Ic", "a\u011b8;1;1tbc"),
]


def through(text: str, *, cut: int | None = None) -> str:
    data = text.encode()
    f = TerminalFilter()
    if cut is None:
        return f.feed(data).decode()
    return (f.feed(data[:cut]) + f.feed(data[cut:])).decode()


@pytest.mark.parametrize(("text", "expected"), KEPT + DROPPED)
def test_the_table_whole_and_cut_at_every_byte(text: str, expected: str | None) -> None:
    want = text if expected is None else expected
    assert through(text) == want
    for cut in range(len(text.encode()) + 1):
        assert through(text, cut=cut) == want, cut


def test_one_byte_at_a_time() -> None:
    text = "".join(t for t, _ in KEPT) + "".join(t for t, _ in DROPPED)
    f = TerminalFilter()
    got = b"".join(f.feed(bytes([b])) for b in text.encode())
    assert got == through(text).encode()
    assert f.dropped >= len(DROPPED)


def test_bytes_that_are_not_utf8_are_replaced_never_acted_on() -> None:
    f = TerminalFilter()
    assert f.feed(b"a\x9d52;c;eA==\x9cb\xff") == "a\ufffd52;c;eA==\ufffdb\ufffd".encode()


def test_a_sequence_that_never_ends_hides_only_itself() -> None:
    f = TerminalFilter()
    endless = f"{E}]11;" + "x" * (MAX_SEQUENCE * 3)
    assert f.feed(endless.encode()) == b""
    # The overlong OSC is dropped up to its terminator; then text flows again.
    assert f.feed(f"\x07after{E}[1mbold".encode()) == f"after{E}[1mbold".encode()
    g = TerminalFilter()
    assert g.feed(f"{E}P{'y' * 100000}".encode()) == b""
    assert g.feed(f"{E}\\visible".encode()) == b"visible"


def test_the_restore_gives_back_the_scroll_region_where_the_cursor_is() -> None:
    # Setting the scroll region moves the cursor home: it is saved before and restored after
    # (before the attributes are reset, which the restore of the cursor also restores).
    restore = RESTORE.decode()
    region = restore.index(f"{E}[r")
    assert restore[region - 2:region] == f"{E}7" and restore[region + 3:region + 5] == f"{E}8"
    assert restore.index(f"{E}[?1049l") < region < restore.index(f"{E}[0m")
    # Synchronised output ends, the cursor has its own style, no mouse mode of any kind.
    for mode in (f"{E}[?2026l", f"{E}[0 q", *(f"{E}[?{m}l" for m in (9, 69, 1001, 1016, 7727))):
        assert mode in restore, mode
    # The filter passes every sequence of it (a program could write it all).
    assert TerminalFilter().feed(RESTORE) == RESTORE
