"""`clauderon logs` on log files as supervisord writes them, and the CLI in a pipeline.

The command runs as people run it (the installed console script, a real pipe); the files
are written here the way supervisord writes them: appended to, then rotated (renamed aside
and a new file begun).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.logs_command import SERVICES, _Followed, _more, last_lines, printable, tail

BIN = Path(sys.executable).parent


def env(home: Path) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "CLAUDERON_HOME": str(home)}


def make_logs(home: Path, lines: int = 5) -> Path:
    logs = home / "logs"
    logs.mkdir(parents=True)
    for name in SERVICES:
        (logs / f"{name}.log").write_text("".join(f"{name} line {i}\n" for i in range(lines)))
    return logs


@pytest.mark.parametrize(("data", "count", "out"), [
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc", 2, b"b\nc"),
    (b"a\n", 5, b"a\n"),
    (b"a\nb\n", 0, b""),
    (b"", 3, b""),
])
def test_last_lines(data: bytes, count: int, out: bytes) -> None:
    assert last_lines(data, count) == out


def test_tail_reads_only_the_end_of_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(200_000)))
    text, size = tail(path, 3)
    assert text == b"line 199997\nline 199998\nline 199999\n"
    assert size == path.stat().st_size


def test_following_survives_rotation_and_prints_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    path.write_bytes(b"old\n")
    f = _Followed("api", path, path.stat().st_ino, path.stat().st_size)
    assert _more(f) == b""
    with path.open("ab") as out:
        out.write(b"one\ntwo-half")
    assert _more(f) == b"one\n"  # the half line waits for its end
    with path.open("ab") as out:
        out.write(b"-end\n")
    assert _more(f) == b"two-half-end\n"
    path.rename(tmp_path / "api.log.1")  # supervisord's rotation
    path.write_bytes(b"fresh\n")
    assert _more(f) == b"fresh\n"
    path.write_bytes(b"new\n")  # truncated and written again (shorter than read so far)
    assert _more(f) == b"new\n"


def test_logs_of_one_service_and_of_all(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_logs(home)
    one = subprocess.run([str(BIN / "clauderon"), "logs", "proxy", "-n", "2"], env=env(home),
                         capture_output=True, text=True, timeout=60)
    assert (one.returncode, one.stdout, one.stderr) == (0, "proxy line 3\nproxy line 4\n", "")
    every = subprocess.run([str(BIN / "clauderon"), "logs", "-n", "1"], env=env(home),
                           capture_output=True, text=True, timeout=60)
    assert every.returncode == 0, every.stderr
    assert every.stdout.splitlines() == [
        line for name in SERVICES
        for line in (f"==> {name} ({home / 'logs' / name}.log) <==", f"{name} line 4")]


def test_logs_without_a_log_say_where_they_would_be(tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "clauderon"), "logs", "api"], env=env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout == ""
    assert "no log in" in done.stderr and "clauderon daemon" in done.stderr
    assert "Traceback" not in done.stderr


def test_follow_prints_what_is_appended_and_ends_quietly_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    logs = make_logs(home)
    proc = subprocess.Popen([str(BIN / "clauderon"), "logs", "-f", "-n", "0"], env=env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        got = b""
        deadline = time.monotonic() + 60
        while b"reconciler | appended" not in got and time.monotonic() < deadline:
            with (logs / "reconciler.log").open("ab") as out:
                out.write(b"appended\n")
            time.sleep(0.3)
            got += proc.stdout.read() or b""
        assert b"reconciler | appended\n" in got, got
        proc.send_signal(2)  # Ctrl-C
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # its pipes closed here, not left to the garbage collector
    assert proc.returncode == 0
    assert b"Traceback" not in err


def test_a_cli_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    """`clauderon logs api | head -n 3` with far more than a pipe holds: head stops reading,
    the CLI's next write fails (EPIPE); it must end quietly with 141 (as a shell reports a
    command ended by SIGPIPE), no traceback, and head's lines intact."""
    home = tmp_path / "home"
    logs = make_logs(home)
    (logs / "api.log").write_bytes(b"".join(b"api line %d\n" % i for i in range(100_000)))
    done = subprocess.run(
        ["bash", "-c", "clauderon logs api -n 100000 | head -n 3; "
                       "echo \"status ${PIPESTATUS[0]} ${PIPESTATUS[1]}\" >&2"],
        env=env(home), capture_output=True, text=True, timeout=60)
    assert done.stdout == "api line 0\napi line 1\napi line 2\n"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.stderr.strip() == "status 141 0"



def test_a_hostile_log_line_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A line carrying what an agent chose (say a host name it asked the proxy for) with
    terminal escapes: retitle the window, clear the screen, a C1 CSI, invalid UTF-8. The
    user's terminal gets them escaped, the rest of the line as it was."""
    home = tmp_path / "home"
    logs = make_logs(home)
    hostile = (b"refused evil\x1b]0;owned\x07.example \x1b[2J\xc2\x9b31m \xff\xfe tab\tend "
               + "caf\u00e9\n".encode())
    (logs / "supervisord.log").write_bytes(hostile)
    done = subprocess.run([str(BIN / "clauderon"), "logs", "supervisord"], env=env(home),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (b"refused evil\\x1b]0;owned\\x07.example \\x1b[2J\\x9b31m "
                           b"\\xff\\xfe tab\tend caf\xc3\xa9\n")
    for byte in (b"\x1b", b"\x07", b"\x9b", b"\xff"):
        assert byte not in done.stdout
    assert printable(b"plain line\n") == b"plain line\n"


#: A line of the proxy's log forged: the agent's words (a host it asked for) run to the
#: terminal's edge and this follows, drawn at the start of the next row as a line of its own.
FORGED = '{"event": "session created", "session": "release"}'


def test_a_log_line_that_wraps_draws_no_line_of_its_own(tmp_path: Path) -> None:
    """``clauderon logs`` on a terminal 80 columns wide: a row that goes on a line of the
    log is indented, so what the agent padded past the edge starts no row."""
    from tests.integration.test_cli_words import screen_rows
    from tests.support.terminal import on_a_terminal

    home = tmp_path / "home"
    logs = make_logs(home)
    said = "refused host evil" + "." * (80 - 17) + FORGED
    (logs / "proxy.log").write_text(f"proxy line\n{said}\nproxy line after\n")
    code, shown = on_a_terminal([str(BIN / "clauderon"), "logs", "proxy"],
                                {**os.environ, **env(home)}, columns=80)
    assert code == 0, shown
    rows = screen_rows(shown, 80)
    assert [row for row in rows if row.startswith(FORGED[:20])] == [], rows
    assert said in "".join(row.removeprefix("  ") for row in rows), rows
