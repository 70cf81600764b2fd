"""The person's terminal is given back as it was when an attach ends (a real terminal: the
relay of ``clauderon relay``, which an attach uses, in a tmux pane; no engine).

The filter passes modes (they draw the agent's screen), and a detach ends the attach with
the container's terminal in whatever modes its programs set: tmux's own alternate screen
and focus reporting, and whatever else the agent chose. Left on, they stay on in the
person's shell: its screen swapped away, what they type next hidden (SGR 8) or drawn as
line graphics, mouse clicks, focus changes and keys with modifiers typed into the command
line as sequences.

The agent may also ask the terminal questions (its version, its colours); over a slow link
the answers arrive after the attach has ended, and whatever reads the terminal next takes
them as typed: a shell as text, the TUI as keys (``m``, in tmux's version, switches a
session's access mode).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.termanswers import LEARN_SECONDS

ROOT = Path(__file__).resolve().parents[2]
TMUX_CONF = """\
set -g status off
set -g remain-on-exit on
set -g default-terminal tmux-256color
set -g extended-keys on
set -g allow-rename on
"""
#: The agent's parting modes (printf format): the alternate screen, mouse (SGR encoding),
#: application cursor keys and keypad, line graphics, cursor hidden, insert, concealed
#: text, no wrapping, focus reporting, and keys with modifiers sent as sequences
#: (modifyOtherKeys).
PARTING = ("\\033[?1049h\\033[?1000h\\033[?1006h\\033[?1h\\033=\\033(0\\033[?25l\\033[4h"
           "\\033[8m\\033[?7l\\033[?1004h\\033[>4;2mAGENT")
#: The tmux pane's state once the person's shell has the terminal back: (format, wanted).
FLAGS = {"alternate_on": "0", "mouse_any_flag": "0", "mouse_sgr_flag": "0",
         "keypad_cursor_flag": "0", "keypad_flag": "0", "cursor_flag": "1",
         "insert_flag": "0", "wrap_flag": "1"}


class Pane:
    def __init__(self, workdir: Path, script: str, *args: str) -> None:
        self.socket = str(workdir / "tmux.sock")
        conf = workdir / "tmux.conf"
        conf.write_text(TMUX_CONF)
        self.tmux("-f", str(conf), "new-session", "-d", "-s", "person", "-x", "80", "-y", "20",
                  "-e", f"PYTHONPATH={ROOT}", "-e", "LANG=C.UTF-8",
                  "sh", "-c", script, *args)

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-S", self.socket, *args], text=True,
                              capture_output=True, timeout=30, check=False)
        assert proc.returncode == 0, f"tmux {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def show(self, fmt: str) -> str:
        return self.tmux("display", "-p", "-t", "person", fmt).strip()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-e", "-S", "-", "-t", "person")

    def wait(self, shown: re.Pattern[str], timeout: float = 60) -> str:
        """The screen (and its history) once it shows ``shown``; fail (never time) after
        ``timeout``."""
        deadline = time.monotonic() + timeout
        while not shown.search(screen := self.screen()):
            assert time.monotonic() < deadline, screen
            time.sleep(0.1)
        return screen

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=30, check=False)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    # The person's shell: the relay runs the agent's program; then the shell prints, reads
    # four keys, and stays until the test has looked (a pane that ended hides its cursor).
    script = (f'{sys.executable} -m cli relay -- printf "$0"; printf "qqq-SHELL %s\\n" "$?"; '
              "stty raw -echo; printf KEYS; head -c 4 | od -An -c; tmux wait-for looked")
    p = Pane(tmp_path, script, PARTING)
    try:
        yield p
    finally:
        p.tmux("wait-for", "-S", "looked")
        p.close()


#: Between the person's terminal and the program it runs (argv from the third argument), on
#: a pseudo-terminal of its own: passes both ways, and writes what the program sends the
#: terminal to the file of the second argument (``-``: nowhere). The first argument is the
#: terminal: ``talks`` answers as it is asked; ``mute`` answers no device attributes query
#: (the answers are taken out on the way back); ``slow`` is a slow link (ssh across the
#: world): what the program writes goes out at once, what the terminal sends back (its
#: answers) is held until the relay asks its own question after the agent's output (a relay
#: that waits for that answer reads everything before it) or, failing that, until the shell
#: after the attach reads keys: answers that arrive once the attach has ended.
BETWEEN = """\
import os, pty, re, select, sys, tty
mode, record = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[3], sys.argv[3:])
tty.setraw(0)
log = open(record, "wb", buffering=0) if record != "-" else None
held, seen, open_ = b"", b"", mode != "slow"
while True:
    ready = select.select([0, fd], [], [])[0]
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        os.write(1, data)
        if log:
            log.write(data)
        seen += b"" if open_ else data
        agent = seen.find(b"AGENT")
        if not open_ and ((agent >= 0 and b"\\x1b[c" in seen[agent:]) or b"KEYS" in seen):
            open_ = True
            os.write(fd, held)
    if 0 in ready:
        keys = os.read(0, 65536)
        if mode == "mute":
            keys = re.sub(rb"\\x1b\\[[?>][\\d;]*c", b"", keys)
        if open_:
            os.write(fd, keys)
        else:
            held += keys
"""
#: What reads the keys after the attach: it asks the terminal's device attributes itself,
#: and shows (escaped) everything that arrives up to their answer.
READER = """\
import os, re, tty
tty.setraw(0)
os.write(1, b"KEYS\\x1b[c")
got = b""
while not re.search(rb"\\x1b\\[\\?[\\d;]*c", got):
    got += os.read(0, 65536)
os.write(1, b"\\r\\nREAD " + repr(got).encode() + b"\\r\\n")
"""
#: The agent asks the terminal its version (XTVERSION) a few times and ends: tmux answers
#: "tmux 3.3a", which the TUI would read as the keys t, m (switch the access mode), u, a.
ASKING = "\\033[>0q" * 8 + "AGENT"


def test_the_terminals_late_answers_are_never_typed_after_the_attach(tmp_path: Path) -> None:
    (tmp_path / "between.py").write_text(BETWEEN)
    (tmp_path / "reader.py").write_text(READER)
    script = (f'{sys.executable} {tmp_path / "between.py"} slow - '
              f'sh -c \'{sys.executable} -m cli relay -- '
              f'printf "$0"; {sys.executable} {tmp_path / "reader.py"}; tmux wait-for looked\' '
              '"$0"')
    pane = Pane(tmp_path, script, ASKING)
    try:
        read = pane.wait(re.compile(r"READ b'.*'"))
        line = next(x for x in read.splitlines() if x.startswith("READ "))
        # Only the reader's own answer: none of the agent's arrived after the attach.
        assert re.fullmatch(r"READ b'\\x1b\[\?[\d;]*c'", line), line
    finally:
        pane.tmux("wait-for", "-S", "looked")
        pane.close()


def test_the_persons_terminal_is_given_back_in_its_own_modes(pane: Pane) -> None:
    screen = pane.wait(re.compile("KEYS"))
    state = {name: pane.show(f"#{{{name}}}") for name in FLAGS}
    assert state == FLAGS, screen
    # The relay ended well, and what the shell prints after it is plain text: not line
    # graphics (SO), not concealed.
    line = next(x for x in screen.splitlines() if "-SHELL" in x)
    assert "qqq-SHELL 0" in line and "\x0e" not in line and "\x1b[8m" not in line, repr(line)
    # Keys reach the shell as a shell reads them: ctrl-enter is no sequence (the terminal
    # has none for it), and the keys after it arrive as typed.
    pane.tmux("send-keys", "-t", "person", "C-Enter")
    pane.tmux("send-keys", "-t", "person", "-l", "abcd")
    read = pane.wait(re.compile(r"KEYS\s+\S")).split("KEYS")[-1]
    assert "033" not in read and "a" in read, read


#: The person's shell: titles its terminal, runs the agent's program (its first argument)
#: through the relay, then prints and waits until the test has looked.
PERSON = """\
printf '\\033]2;PERSON\\033\\\\'
{relay}
printf "qqq-SHELL %s\\n" "$?"
printf KEYS
tmux wait-for looked
"""
RELAY = f'{sys.executable} -m cli relay -- sh -c "$1"'


class Recorded:
    """A tmux pane (the person's terminal) whose shell runs ``agent`` through the relay,
    behind BETWEEN, which records what the relay writes."""

    def __init__(self, workdir: Path, agent: str, *, mute: bool = False,
                 relay: str = RELAY) -> None:
        (workdir / "between.py").write_text(BETWEEN)
        (workdir / "person.sh").write_text(PERSON.format(relay=relay))
        self.record = workdir / "record"
        self.pane = Pane(workdir, f'{sys.executable} {workdir / "between.py"} '
                         f'{"mute" if mute else "talks"} {self.record} '
                         f'sh {workdir / "person.sh"} "$0"', agent)

    def written(self) -> bytes:
        """What the relay wrote to the terminal, once the shell after it has printed."""
        self.pane.wait(re.compile("KEYS"))
        return self.record.read_bytes()

    def close(self) -> None:
        self.pane.tmux("wait-for", "-S", "looked")
        self.pane.close()


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Callable[..., Recorded]]:
    made: list[Recorded] = []

    def make(agent: str, *, mute: bool = False, relay: str = RELAY) -> Recorded:
        made.append(Recorded(tmp_path, agent, mute=mute, relay=relay))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_the_scroll_region_is_given_back_with_the_cursor_where_it_was(
        recorded: Callable[..., Recorded]) -> None:
    # The agent scrolls in a band (rows 3-10), counts the cursor inside it (origin mode) and
    # ends on row 15: left so, the person's shell would scroll inside the band.
    r = recorded("printf 'one\\ntwo\\n\\033[3;10r\\033[?6h\\033[15;1HAGENT'")
    r.written()
    state = {name: r.pane.show(f"#{{{name}}}")
             for name in ("scroll_region_upper", "scroll_region_lower", "origin_flag")}
    assert state == {"scroll_region_upper": "0", "scroll_region_lower": "19",
                     "origin_flag": "0"}, r.pane.screen()
    # The shell goes on where the agent's text ended (row 15), not at the top of the screen.
    rows = r.pane.tmux("capture-pane", "-p", "-t", "person").splitlines()
    assert rows[14].startswith("AGENTqqq-SHELL 0"), rows


def test_the_agent_cannot_title_the_persons_terminal(recorded: Callable[..., Recorded]) -> None:
    # A title that names another program, left on the person's window after the attach; and
    # the window's name in the person's own tmux or screen (ESC k ... ST).
    r = recorded("printf '\\033]2;sudo\\007\\033]0;ssh prod\\033\\\\\\033ksudo\\033\\\\AGENT'")
    r.written()
    assert r.pane.show("#{pane_title}") == "PERSON"
    assert r.pane.show("#{window_name}") != "sudo"


KITTY_KEYS = re.compile(rb"\x1b\[[<=>?][\d;]*u")


def test_the_agent_cannot_turn_on_the_kitty_keyboard_protocol(
        recorded: Callable[..., Recorded]) -> None:
    # Pushed and set flags would make every key in the person's shell a CSI ... u sequence.
    r = recorded("printf '\\033[>1u\\033[=31;1u\\033[>11uAGENT'")
    written = r.written()
    assert b"AGENT" in written and not KITTY_KEYS.findall(written), written
    # The terminal answers: the relay asked it once the agent's output was done (a recorder
    # that sees what the relay writes after it).
    assert b"\x1b[c" in written[written.index(b"AGENT"):], written


def test_the_modes_a_program_leaves_in_the_terminal_are_reset(
        recorded: Callable[..., Recorded]) -> None:
    # A blinking bar cursor, synchronised output (the terminal stops drawing), the mouse in
    # highlight and pixel modes, left and right margins, the wheel as cursor keys
    # (alternate scroll), no key repeat, backspace as BS, the keyboard locked (KAM), every
    # key echoed on the screen (SRM).
    r = recorded("printf '\\033[5 q\\033[?2026h\\033[?1001h\\033[?1016h\\033[?69h"
                 "\\033[?1007h\\033[?8l\\033[?67h\\033[2h\\033[12l\\033[?5h\\033[?8r"
                 "\\033[>1;3m\\033 GAGENT'")
    written = r.written()
    # ...reverse video, XTRESTORE of no key repeat, shifted cursor keys in another encoding
    # (XTMODKEYS), answers in 8-bit controls (S8C1T): none arrives.
    for never in (b"\x1b[?5h", b"\x1b[?8r", b"\x1b[>1;3m", b"\x1b G"):
        assert never not in written, (never, written)
    modes = (b"?2026", b"?1001", b"?1016", b"?69", b"?1007", b"?8", b"?67", b"2", b"12")
    last = {what: re.findall(rb"\x1b\[" + re.escape(what) + rb"[hl]", written)[-1:]
            for what in modes}
    assert last == {b"?2026": [b"\x1b[?2026l"], b"?1001": [b"\x1b[?1001l"],
                    b"?1016": [b"\x1b[?1016l"], b"?69": [b"\x1b[?69l"], b"?1007": [],
                    b"?8": [], b"?67": [], b"2": [], b"12": []}, written
    assert re.findall(rb"\x1b\[\d* q", written)[-1] == b"\x1b[0 q", written


def test_a_terminal_that_answers_nothing_is_not_asked_at_the_end(
        recorded: Callable[..., Recorded]) -> None:
    # The terminal answers no device attributes query. The relay asks as the attach starts;
    # the agent's program outlasts the time a terminal is given to answer, so once it ends
    # the relay knows there is no answer to wait for, and asks nothing more.
    r = recorded(f"printf AGENT; sleep {LEARN_SECONDS + 1}", mute=True)
    written = r.written()
    after = written[written.index(b"AGENT"):]
    assert b"\x1b[c" not in after, after
    assert written[:written.index(b"AGENT")].count(b"\x1b[c") == 1, written
    assert "qqq-SHELL 0" in r.pane.screen()


#: The attach's own relay, with its tries while the engine refuses a container held still.
ATTACH = (f"{sys.executable} -c 'import sys, pathlib; from cli.ptyrelay import "
          "run_attach_filtered as run; "
          "sys.exit(run([\"sh\", \"-c\", sys.argv[1]], pathlib.Path(sys.argv[2])))' "
          '"$1" "$(mktemp)"')


def test_an_attach_waiting_out_a_hold_asks_a_mute_terminal_once(
        recorded: Callable[..., Recorded], tmp_path: Path) -> None:
    # The engine refuses the first two tries (the container is held still), as it words it;
    # the third attaches. The terminal answers no question: asked at each try and waited
    # for at each try's end, the person would wait the learning time once per try.
    count = tmp_path / "tries"
    engine = (f'n=$(cat {count} 2>/dev/null || echo 0); if [ "$n" -lt 2 ]; then '
              f'echo $((n + 1)) > {count}; '
              'echo "You cannot attach to a paused container, unpause it first" >&2; exit 1; '
              "fi; printf AGENT")
    r = recorded(engine, mute=True, relay=ATTACH)
    written = r.written()
    assert count.read_text().strip() == "2", written  # two refusals, then the attach
    before = written[:written.index(b"AGENT")]
    assert before.count(b"held still") == 1, written  # told once
    assert before.count(b"\x1b[c") == 1, written  # asked once, before the first try
    assert "qqq-SHELL 0" in r.pane.screen()
