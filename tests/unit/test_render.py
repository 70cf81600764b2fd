"""CLI rendering: ages and aligned tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cli.render import age, session_detail, session_rows, table

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(0), "0s"),
    (timedelta(seconds=59), "59s"),
    (timedelta(seconds=60), "1m"),
    (timedelta(minutes=59, seconds=59), "59m"),
    (timedelta(hours=1), "1h"),
    (timedelta(hours=23, minutes=59), "23h"),
    (timedelta(days=1), "1d"),
    (timedelta(days=400), "400d"),
    (timedelta(seconds=-30), "0s"),  # clock skew never shows a negative age
])
def test_age(delta: timedelta, text: str) -> None:
    assert age((NOW - delta).isoformat(), now=NOW) == text


@pytest.mark.parametrize("iso", [None, ""])
def test_age_of_nothing(iso: str | None) -> None:
    assert age(iso, now=NOW) == "-"


def test_table_aligns_columns() -> None:
    out = table(["NAME", "PHASE"], [["a", "running"], ["longer-name", "stopped"]])
    assert out.splitlines() == [
        "NAME         PHASE",
        "a            running",
        "longer-name  stopped",
    ]


def test_table_no_rows_and_no_trailing_spaces() -> None:
    assert table(["NAME", "PHASE"], []) == "NAME  PHASE"
    out = table(["A", "B"], [["x", ""], ["", "y"]])
    assert all(line == line.rstrip() for line in out.splitlines())


def test_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError):
        table(["A", "B"], [["only-one"]])


def _session(**changes: object) -> dict[str, object]:
    s: dict[str, object] = {
        "name": "flaky", "phase": "failed", "status_reason": "image missing",
        "agent_status": "waiting_input", "branch": "clauderon/flaky",
        "created_at": datetime.now(UTC).isoformat(), "id": "abc", "cpu": None,
    }
    s.update(changes)
    return s


def test_session_rows_show_reason_and_status() -> None:
    lines = session_rows([_session()]).splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "AGENT-STATUS", "BRANCH", "BACKEND", "AGE"]
    assert "failed (image missing)" in lines[1]
    assert "waiting-input" in lines[1]
    assert "clauderon/flaky" in lines[1]


def test_session_detail_skips_empty_values() -> None:
    out = session_detail(_session())
    assert "name" in out and "flaky" in out
    assert "cpu" not in out
    assert "status-reason" in out


def _wire(**changes: object) -> dict[str, object]:
    from appliance import wire
    from appliance.sessions import Session, SessionId
    now = datetime.now(UTC)
    base: dict[str, object] = dict(
        id=SessionId("0b8f6a7e-0000-4000-8000-000000000009"), name="flaky",
        repo_path="/src/app", worktree_path="/w/flaky", branch="clauderon/flaky",
        base_ref="main", image="img", created_at=now, updated_at=now)
    base.update(changes)
    return wire.session_json(Session(**base))  # type: ignore[arg-type]


def test_list_age_counts_from_creation_not_the_last_change() -> None:
    from appliance.sessions import AgentStatus, Phase
    now = datetime.now(UTC)
    s = _wire(created_at=now - timedelta(days=3, hours=1), updated_at=now - timedelta(seconds=5),
              archived_at=now - timedelta(hours=2), phase=Phase.RUNNING,
              agent_status=AgentStatus.WORKING)
    row = session_rows([s]).splitlines()[1].split()
    assert row[-1] == "3d"


def test_list_shows_a_failing_model_instead_of_working_and_says_why() -> None:
    from appliance.sessions import AgentStatus, Phase
    why = "the model API answered 401: check ANTHROPIC_API_KEY"
    s = _wire(phase=Phase.RUNNING, agent_status=AgentStatus.WORKING, model_error=why)
    lines = session_rows([s]).splitlines()
    assert lines[1].split()[2] == "model-failing"
    assert lines[2] == f"! flaky: {why}"
    assert f"model-error    {why}" in session_detail(s) or why in session_detail(s)
    fine = session_rows([_wire(phase=Phase.RUNNING, agent_status=AgentStatus.WORKING)])
    assert fine.splitlines()[1].split()[2] == "working" and len(fine.splitlines()) == 2


def test_list_says_how_to_restart_an_agent_that_exited() -> None:
    from appliance.sessions import AgentStatus, Phase
    lines = session_rows([_wire(phase=Phase.RUNNING, agent_status=AgentStatus.EXITED)]
                         ).splitlines()
    assert lines[1].split()[2] == "exited"
    assert lines[2] == "! flaky: the agent exited; restart it: clauderon restart-agent flaky"
    stopped = session_rows([_wire(phase=Phase.STOPPED, agent_status=AgentStatus.EXITED)])
    assert len(stopped.splitlines()) == 2  # nothing to restart in a stopped session


def test_age_counts_from_creation_not_the_last_change() -> None:
    """A session made three days ago and touched a second ago is 3d old in `list`."""
    now = datetime.now(UTC)
    s = _session(created_at=(now - timedelta(days=3, minutes=5)).isoformat(),
                 updated_at=now.isoformat())
    header, row = session_rows([s]).splitlines()
    assert header.split()[-1] == "AGE"
    assert row.split()[-1] == "3d"


def test_status_counts_sessions_whose_agent_exited() -> None:
    from cli.status import health_text
    health = {"docker": {"reachable": True, "url": "unix://d"},
              "sessions": {"total": 3, "failed": 0, "model_failing": 0, "agent_exited": 2}}
    assert "sessions     3 (0 failed, 2 whose agent exited (restart-agent))" in \
        health_text(health, "/s")
    del health["sessions"]["agent_exited"]  # an older API
    assert "exited" not in health_text(health, "/s")


def test_status_says_whether_bytes_or_files_ran_out() -> None:
    from cli.status import health_text
    disk = {"path": "/d", "full": False, "free_bytes": 900 * 2**20, "reserve_bytes": 64 * 2**20,
            "free_files": 50_000, "reserve_files": 4096, "largest": None}
    health: dict[str, object] = {"docker": {"reachable": True, "url": "unix://d"}, "disk": disk}
    assert "disk         900 MiB free, room for 50000 files (/d)" in health_text(health, "/s")
    disk.update(full=True, free_files=12, largest=[
        {"name": "many", "bytes": 3 * 2**20, "files": 90_000, "workspace_bytes": 3 * 2**20,
         "container_bytes": 0}])
    text = health_text(health, "/s")
    assert "FULL: 900 MiB free, room for 12 files (/d); below 4096 files the proxy " \
        "forwards nothing" in text, text
    assert "largest sessions: many 90000 files, 3 MiB" in text, text
    disk.update(free_bytes=5 * 2**20, free_files=None, largest=None)  # bytes ran out
    assert "FULL: 5 MiB free (/d); below 64 MiB the proxy forwards nothing" in \
        health_text(health, "/s")
    # A tiny session whose requests' audit lines fill the disk is named by them.
    disk.update(largest=[
        {"name": "loud", "bytes": 41 * 2**20, "files": None, "workspace_bytes": 2**19,
         "container_bytes": 2 * 2**20, "audit_bytes": 38 * 2**20},
        {"name": "calm", "bytes": 3 * 2**20, "files": None, "workspace_bytes": 3 * 2**20,
         "container_bytes": 0, "audit_bytes": 4096}])
    assert "largest sessions: loud 41 MiB (2 MiB in its container, 38 MiB of its requests' " \
        "audit lines), calm 3 MiB" in health_text(health, "/s")


#: What an agent may get into an API answer: OSC 52 (the clipboard), a C1 string, a bidi
#: override that reorders what the person reads.
HOSTILE = "a\x1b]52;c;ZWNobyBwd25lZAo=\x07b \x9d52;x\x9c \u202eevil\tc\nd"


def test_what_the_cli_prints_acts_on_no_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from cli.__main__ import main
    from cli.table import emit
    emit(argparse.Namespace(json=False), {}, HOSTILE)
    emit(argparse.Namespace(json=True), {"title": HOSTILE}, "")
    # An error's message (here the program a relay was asked to run) too.
    assert main(["relay", "--", "\x1b]52;c;eA==\x07nowhere"]) != 0
    out, err = capsys.readouterr()
    for stream in (out, err):
        for control in ("\x1b", "\x07", "\x9d", "\x9c", "\u202e"):
            assert control not in stream, (control, stream)
    assert "a]52;c;ZWNobyBwd25lZAo=b 52;x <U+202E>evil\tc\nd" in out  # inert, tab, newline
    assert '"title": "a\\u001b]52' in out  # JSON escapes it
    assert "]52;c;eA==nowhere is not installed here" in err, err


@pytest.mark.parametrize(("said", "shown"), [
    ("def is_ad\u200dmin():\u200b", "def is_ad<U+200D>min():<U+200B>"),  # zero-width
    ("report\u202etxt.sh", "report<U+202E>txt.sh"),  # reorders what follows
    ('"user\u2066 # admin\u2069"', '"user<U+2066> # admin<U+2069>"'),  # isolates
    ("\ufeffcode\u2060\u200e\u200f\u061c", "<U+FEFF>code<U+2060><U+200E><U+200F><U+061C>"),
    ("is_ad\U000e0064\U000e0020min", "is_ad<U+E0064><U+E0020>min"),  # tag letters
    ("run(\u3164) ar\u00adgs\u034f chec\ufe00k",
     "run(<U+3164>) ar<U+00AD>gs<U+034F> chec<U+FE00>k"),
    ("\u115f\u1160\uffa0\u17b4\u180e\u206a\U0001d173",
     "<U+115F><U+1160><U+FFA0><U+17B4><U+180E><U+206A><U+1D173>"),  # fillers, formats
    *[(drawn, drawn) for drawn in ("caf\u00e9", "\u4e2d\u6587", "\u05e9\u05dc\u05d5\u05dd",
                                   "\u26a0\ufe0f done", "\u2764\ufe0e")],  # an emoji's drawing
    ("a\x1b]52;c;eA==\x07b\tc\n", "a]52;c;eA==b\tc\n"),
])
def test_the_cli_shows_what_a_terminal_draws_as_nothing(said: str, shown: str) -> None:
    """The CLI's one rule for others' words (:func:`cli.table.inert`): no control, and no
    character drawn as nothing but as a mark naming it."""
    from cli.table import inert
    assert inert(said) == shown


@pytest.mark.parametrize(("path", "shown"), [
    ("src\u2215app.py", "src<U+2215>app.py"),  # division slash: reads as src/app.py
    ("a\u2044b\uff0fc\u29f8d\u2571e\u1735f", "a<U+2044>b<U+FF0F>c<U+29F8>d<U+2571>e<U+1735>f"),
    ("src/app.py", "src/app.py"),  # a separator that is one
    ("src\u2215is_ad\u200dmin.py", "src<U+2215>is_ad<U+200D>min.py"),  # and what inert marks
    ("src<U+2215>app.py", "src<U+2215>app.py"),  # marked already: the TUI's answers are inert
])
def test_a_path_shows_what_reads_as_a_separator_and_is_none(path: str, shown: str) -> None:
    """A file named ``src<U+2215>app.py`` lies in the root and reads as ``src/app.py``: in a
    path (:func:`cli.table.inert_path`) each character drawn as a slash is marked."""
    from cli.table import inert, inert_path
    assert inert_path(path) == shown
    assert inert_path(inert(path)) == shown


def test_the_cli_and_the_tui_mark_a_changed_files_look_alike_separator() -> None:
    """git quotes a name outside ASCII in what it writes (``"src\\342\\210\\225app.py"``),
    so today's diff carries none; a path the answer gives as it is is still shown marked by
    the CLI's ``diff --stat`` and lists, and the TUI's changed files."""
    from cli import diffs
    from cli.tui.detail import changed_files
    files = [{"status": "A", "path": "src\u2215app.py", "work_tree": "undone"}]
    body = {"repos": [{"name": "app", "primary": True, "path": "/workspace",
                       "base_ref": "main", "committed": {"commit": "ab", "files": files,
                                                         "diff": "+1\u20442\n"}}]}
    assert diffs.render(body, stat=True).splitlines()[2] == \
        "A  src<U+2215>app.py  (committed; the work tree undoes it)"
    assert diffs.render(body, stat=False).splitlines()[2:] == [
        "! src<U+2215>app.py: committed; the work tree undoes it", "+1\u20442"]
    tui = [line.plain for line in changed_files({**body["repos"][0], **body})]
    assert "A src<U+2215>app.py (committed; the work tree undoes it)" in tui, tui


def test_the_web_ui_marks_the_same_slashes() -> None:
    """The web UI's set (``format.ts``) is the CLI's: one list, written twice."""
    import re
    from pathlib import Path

    from cli.table import SLASHES
    source = (Path(__file__).parents[2] / "api/web/src/format.ts").read_text()
    found = re.search(r"SLASH_CHARS = String\.raw`([^`]*)`", source)
    assert found is not None
    web = {chr(int(h, 16)) for h in re.findall(r"\\u([0-9a-f]{4})", found.group(1))}
    assert web == {chr(c) for c in range(0x110000) if SLASHES.fullmatch(chr(c))}


def test_words_keep_their_slashes_outside_paths() -> None:
    """In words the agent writes (a fraction, Japanese prose, a diagram) such characters
    deceive no one about where a file is: :func:`cli.table.inert` leaves them."""
    from cli.table import inert
    assert inert("1\u20442 \uff0f \u2571\u2572") == "1\u20442 \uff0f \u2571\u2572"


@pytest.mark.parametrize(("shown", "meant"), [
    ("check is_ad<U+2060>min<U+FEFF>", "check is_ad\u2060min\ufeff"),  # what inert marks
    ("report<U+202E>txt.sh", "report\u202etxt.sh"),
    ("is_ad<U+E0064>min", "is_ad\U000e0064min"),  # five digits: a tag letter
    ("<U+0041> and <U+00E9>", "<U+0041> and <U+00E9>"),  # a mark inert never writes: text
    ("<U+200d> <U+20600> <U+2060", "<U+200d> <U+20600> <U+2060"),  # lower, five, unclosed
    ("no mark at all", "no mark at all"),
])
def test_what_a_person_edits_in_the_shown_form_goes_back_as_it_was(shown: str,
                                                                    meant: str) -> None:
    """The TUI's title dialog is filled with the title as drawn (:func:`cli.table.inert`);
    the marks in what is saved go back as the characters they name
    (:func:`cli.table.unmarked`), and every mark inert writes round-trips."""
    from cli.table import inert, unmarked
    assert unmarked(shown) == meant
    assert unmarked(inert(meant)) == meant


@pytest.mark.parametrize(("line", "width", "indent", "shown"), [
    ("short", 80, 4, ["short"]),
    ("abcdefghij", 0, 4, ["abcdefghij"]),  # not a terminal: as it is
    ("abcdefghij", 6, 2, ["abcde", "  fgh", "  ij"]),  # a column kept free at the edge
    ("ab" + "." * 7 + "12:00 NET", 10, 3, ["ab.......", "   12:00 ", "   NET"]),
    ("ab\u4e2d\u4e2d\u4e2dcd", 8, 2, ["ab\u4e2d\u4e2d", "  \u4e2dcd"]),  # wide: two columns
    ("a\u0301" * 3, 6, 1, ["a\u0301a", " \u0301a", " \u0301"]),  # counted high, never low
    ("a\tb\tc", 12, 2, ["a\tb", "  \tc"]),  # a tab: up to eight
    ("abcdef", 3, 9, ["ab", " c", " d", " e", " f"]),  # an indent of half the width at most
])
def test_a_long_line_is_cut_into_rows_no_terminal_wraps(line: str, width: int, indent: int,
                                                        shown: list[str]) -> None:
    from cli.table import rows
    assert rows(line, width, indent) == shown
