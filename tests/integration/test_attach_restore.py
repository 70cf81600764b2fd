"""The person's terminal is given back as it was when an attach ends (a real terminal: the
relay of ``clauderon relay``, which an attach uses, in a tmux pane; no engine).

The filter passes modes (they draw the agent's screen), and a detach ends the attach with
the container's terminal in whatever modes its programs set: tmux's own alternate screen
and focus reporting, and whatever else the agent chose. Left on, they stay on in the
person's shell: its screen swapped away, what they type next hidden (SGR 8) or drawn as
line graphics, mouse clicks, focus changes and keys with modifiers typed into the command
line as sequences.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TMUX_CONF = """\
set -g status off
set -g remain-on-exit on
set -g default-terminal tmux-256color
set -g extended-keys on
"""
#: The agent's parting modes (printf format): the alternate screen, mouse (SGR encoding),
#: application cursor keys and keypad, line graphics, cursor hidden, insert, concealed
#: text, no wrapping, focus reporting, and keys with modifiers sent as sequences
#: (modifyOtherKeys: ctrl-enter no longer a return).
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
        return self.tmux("capture-pane", "-p", "-e", "-S", "-", "-t", "person")

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
