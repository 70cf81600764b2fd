"""Every command of the CLI that shows a session, run for real on one hostile session.

The agent, in its real container as its own uid, puts every terminal sequence it can think
of into each field it writes: a file's name and its text, a line of its transcript (a
commit's subject is the timeline's, played with the agent image in test_timeline.py).
The sequences would write the person's clipboard (OSC 52), set a link that lies about its
target (OSC 8), rename the window, ask the terminal a question whose answer is typed into
the shell (DECRQSS, OSC 4/10/11, DA), hide text (SGR 8, a cursor move over the line above),
or do the same through C1 controls, and turn what follows backwards (bidi overrides). Each
command below runs as the person runs it, and none of its output bytes holds an escape, a
C1 control or a bidi control: the CLI writes no styling of its own off a terminal. The
table is checked against the CLI's own command registry, so a command added later is
either swept here or says why it is not.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cli.commands import TABLE
from tests.integration.test_transcript_containment import claude_says, line, start_session
from tests.support.appliance import BIN, Appliance
from tests.support.hostile import agent_argv

#: Every sequence, each ending in a visible word so a test can see it arrived as text.
PAYLOAD = ("\x1b]52;c;ZWNobyBwd25lZAo=\x07clip "
           "\x1b]8;;https://evil.invalid/\x07link\x1b]8;;\x07 "
           "\x1b]0;sudo\x07title "
           "\x1bP$qm\x1b\\decrqss "
           "\x1b]4;1;?\x07\x1b]10;?\x07\x1b]11;?\x07query "
           "\x1b[c\x1b[>c\x1bZda "
           "\x1b[8mhidden\x1b[0m "
           "\x1b[1A\x1b[2Kup "
           "\u009b31mcsi1 \u009d52;c;eA==\u0007osc1 "
           "\u202eright\u202c \u2066iso\u2069 \u200fmark")
#: What no byte the CLI prints may be: ESC, a C1 control, a bidi control.
ACTS = re.compile("[\x1b\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

#: Each command that shows the session, as it is run ({s}: the session's name).
SWEPT: dict[str, tuple[tuple[str, ...], ...]] = {
    "list": (("list",), ("list", "--all"), ("list", "--json")),
    "show": (("show", "{s}"), ("show", "{s}", "--json")),
    "diff": (("diff", "{s}"), ("diff", "{s}", "--stat"), ("diff", "{s}", "--json")),
    "timeline": (("timeline", "{s}"), ("timeline", "{s}", "--json")),
    "pr": (("pr", "{s}"), ("pr", "{s}", "--json")),
    "health": (("health", "{s}"), ("health", "{s}", "--json")),
    "usage": (("usage",), ("usage", "--json")),
    "egress": (("egress", "list", "{s}"), ("egress", "pending")),
    "status": (("status",), ("status", "--json")),
    "reconcile": (("reconcile",),),
    "budget": (("budget",),),
}
#: Commands not swept here, and why.
NOT_SWEPT = {
    "create": "makes a session; its progress lines go through the same inert writer",
    "attach": "the terminal itself: tests/integration/test_attach_filter.py",
    "relay": "the terminal itself: tests/integration/test_attach_filter.py",
    "delete": "ends the session", "archive": "ends the session",
    "unarchive": "needs an archived session", "start": "needs a stopped session",
    "stop": "ends the session", "retry": "needs a failed session",
    "edit": "the person's own words", "retitle": "asks the title model",
    "set-access-mode": "changes the session", "send": "writes to the agent",
    "interrupt": "writes to the agent", "push": "needs a remote", "merge": "needs GitHub",
    "restart-agent": "remakes the agent", "recreate": "remakes the container",
    "recreate-fresh": "remakes the container", "update-image": "remakes the container",
    "config": "shows no session", "image": "shows no session", "daemon": "runs the services",
    "tui": "the TUI: tests/integration/test_tui_words.py", "logs": "needs supervisord",
    "backup": "shows no session", "restore": "shows no session", "web": "shows no session",
    "auth": "shows no session", "completion": "shows no session",
}


def test_every_command_is_swept_or_says_why_not() -> None:
    assert sorted(SWEPT.keys() | NOT_SWEPT.keys()) == sorted(command.name for command in TABLE), \
        "a CLI command is neither swept nor excused"
    assert not SWEPT.keys() & NOT_SWEPT.keys()


def test_no_command_writes_an_agents_sequence_to_the_terminal(appliance: Appliance,
                                                               repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    claude_says(container, session["id"], line("assistant", PAYLOAD))
    agent_argv(container, ["perl", "-e", 'open(my $f, ">", "/workspace/$ARGV[0]") or die;'
                           'print $f "$ARGV[0]\\n"', PAYLOAD.replace("/", "_")])
    seen: dict[str, str] = {}
    for runs in SWEPT.values():
        for run in runs:
            argv = [str(BIN / "clauderon"), *(a.format(s=session["name"]) for a in run)]
            done = subprocess.run(argv, env=appliance.env, capture_output=True, timeout=120,
                                  check=False)
            said = (done.stdout + done.stderr).decode("utf-8", "replace")
            seen[" ".join(run)] = said
            found = sorted({f"U+{ord(c):04X}" for c in ACTS.findall(said)})
            assert found == [], f"clauderon {' '.join(run)} wrote {found}: {said!r}"
    # The agent's words arrived, as text.
    assert "clip" in seen["diff {s}"] and "osc1" in seen["diff {s}"], seen["diff {s}"]
    assert "decrqss" in seen["timeline {s}"], seen["timeline {s}"]
