"""The transcript API against a hostile agent (DESIGN.md, "Containment", invariant 5).

The API runs as root on the host and reads the agent's home (``homes/<session id>``), which
the agent writes from inside its container as uid 1000: every name and byte in it is the
agent's. A real appliance runs plain sessions of the base image (no agent CLI); everything
the agent does runs inside its real container (``docker exec``). The reader must never
follow a symlink out (not even while the agent swaps names as fast as it can), never open a
FIFO, never hang, and stay bounded whatever the agent inflates (a gigabyte line, a million
files, JSON nested past any stack): a clear answer every time, never a 500.
"""

from __future__ import annotations

import collections
import json
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.support.appliance import Appliance, wait_for
from tests.support.hostile import AGENT, agent, agent_argv, race

HOME = "/home/agent"
GIB = 1 << 30

#: The swapper, run in the container. Each argument is ``folder<TAB>place<TAB>alt...``: the
#: entry ``place`` in ``folder`` (opened once, so it is found wherever the folder itself is
#: moved) is exchanged atomically (``renameat2(RENAME_EXCHANGE)``) with one of its ``alt``
#: entries and, later, back. Group ``i`` is swapped out while bit ``i`` of the round number
#: is set, so every mix of real and hostile entries comes up, and the real one is never
#: missing. Stops at a stop file, or after 120 s whatever happens; puts everything back.
SWAPPER = r"""
use POSIX ();
use Fcntl qw(O_RDONLY O_DIRECTORY);
my %renameat2 = (x86_64 => 316, aarch64 => 276);
my $nr = $renameat2{(POSIX::uname())[4]} or die "no renameat2 number for this machine";
my @groups;
for (@ARGV) {
    my ($dir, $place, @alts) = split /\t/;
    sysopen(my $dh, $dir, O_RDONLY | O_DIRECTORY) or die "$dir: $!";
    push @groups, {dh => $dh, place => $place, alts => \@alts, out => undef, turn => 0};
}
sub exchange {
    my ($g, $alt) = @_;
    my $fd = fileno($g->{dh});
    syscall($nr, $fd, $g->{place}, $fd, $alt, 2) == 0 or die "$g->{place} <-> $alt: $!";
}
open(my $fh, ">", "/home/agent/.swapping") or die; close $fh;
my ($n, $end) = (0, time + 120);
until (-e "/home/agent/.stop" || time > $end) {
    for my $i (0 .. $#groups) {
        my $g = $groups[$i];
        my $want = ($n >> $i) & 1;
        if ($want && !defined $g->{out}) {
            $g->{out} = $g->{alts}[$g->{turn}++ % @{$g->{alts}}];
            exchange($g, $g->{out});
        } elsif (!$want && defined $g->{out}) {
            exchange($g, $g->{out});
            $g->{out} = undef;
        }
    }
    $n++;
}
for my $g (@groups) { exchange($g, $g->{out}) if defined $g->{out} }
print "$n\n";
"""

APPEND = 'open(my $f, ">>", shift) or die "$!"; print $f map { "$_\\n" } @ARGV'
#: Holds a write lease on ``$ARGV[0]`` (its owner may), deaf to the signal asking it to let
#: go, from the moment it makes ``$ARGV[1]`` until ``$ARGV[2]`` appears (or 120 s pass).
LEASER = r"""
use Fcntl;
$SIG{IO} = "IGNORE";
open(my $f, "<", $ARGV[0]) or die "$!";
fcntl($f, 1024, F_WRLCK) or die "F_SETLEASE: $!";
open(my $m, ">", $ARGV[1]) or die "$!"; close $m;
my $end = time + 120;
select(undef, undef, undef, 0.05) until -e $ARGV[2] || time > $end;
unlink $ARGV[1];
"""
#: One line of JSON nested ``$ARGV[1]`` deep.
NEST = ('open(my $f, ">>", $ARGV[0]) or die "$!"; my $n = $ARGV[1];'
        ' print $f q({"type":"user","message":{"content":) . "[" x $n . "]" x $n . "}}\\n"')


def line(kind: str, text: str) -> str:
    """One Claude Code transcript line, as the CLI writes it."""
    return json.dumps({"type": kind, "message": {"role": kind, "content": text},
                       "uuid": str(uuid.uuid4()), "timestamp": "2025-01-01T00:00:00Z"})


def rollout(text: str) -> str:
    """One Codex rollout line carrying an assistant message."""
    return json.dumps({"type": "response_item", "timestamp": "2025-01-01T00:00:00Z",
                       "payload": {"type": "message", "role": "assistant",
                                   "content": [{"type": "output_text", "text": text}]}})


def start_session(appliance: Appliance, http: httpx.Client, repo: Path,
                  agent_kind: str) -> tuple[dict[str, Any], Any]:
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/sessions", json={"repo_path": str(repo), "name": name,
                                         "agent": agent_kind})
    assert r.status_code == 202, r.text
    session = appliance.wait_phase(name, "running")
    return session, docker.from_env(timeout=300).containers.get(session["backend_id"])


def append(container: Any, path: str, *lines: str) -> None:
    """Append ``lines`` to ``path`` as the agent (through argv: no shell quoting)."""
    agent_argv(container, ["perl", "-e", APPEND, path, *lines])


def claude_says(container: Any, sid: str, *lines: str) -> None:
    """Append ``lines`` to the session's Claude transcript as the agent (its folder too)."""
    folder = f"{HOME}/.claude/projects/-workspace"
    agent_argv(container, ["mkdir", "-p", folder])
    append(container, f"{folder}/{sid}.jsonl", *lines)


def read(http: httpx.Client, sid: str, after: str = "0") -> httpx.Response:
    r = http.get(f"/api/sessions/{sid}/transcript", params={"after": after})
    assert r.status_code != 500, r.text
    return r


def plant(secrets: Path, rel: str, canary: str) -> None:
    """A transcript-shaped file holding ``canary`` in the host's secrets folder."""
    path = secrets / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(line("user", canary) + "\n" + rollout(canary) + "\n")


def test_swapping_the_transcript_for_links_fifos_and_huge_files_never_leaks(
        appliance: Appliance, http: httpx.Client, repo: Path) -> None:
    session, container = start_session(appliance, http, repo, "claude")
    sid = session["id"]
    canary = f"CANARY-{uuid.uuid4().hex}"
    secrets = appliance.settings.secrets_dir
    s = str(secrets)
    for rel in (f"{sid}.jsonl", f"projects/-workspace/{sid}.jsonl"):
        plant(secrets, rel, canary)
    home = appliance.settings.homes_dir / sid
    folder = f"{HOME}/.claude/projects/-workspace"
    real = "hello from the real transcript"
    # The hostile alternatives, by level. Symlink targets are resolved by the host, so they
    # name host paths: the secrets folder absolutely, through /proc/self/root, and relatively
    # from where the link sits; a loop; /dev/zero; a FIFO; a 1 GiB single line (sparse).
    agent(container, f"""set -e
        mkdir -p {folder} && cd {folder}
        printf '%s\\n' '{line("user", real)}' > {sid}.jsonl
        ln -s {s}/{sid}.jsonl f-abs
        ln -s /proc/self/root{s}/{sid}.jsonl f-proc
        ln -s ../../../../../secrets/{sid}.jsonl f-rel
        ln -s {sid}.jsonl f-loop
        ln -s /proc/self/root/dev/zero f-zero
        mkfifo f-fifo
        printf '{{"type":"user","message":{{"content":"' > f-big && truncate -s {GIB} f-big
        cd {HOME}/.claude/projects
        ln -s {s}/projects/-workspace p-abs
        ln -s /proc/self/root{s}/projects/-workspace p-proc
        ln -s ../../../../secrets/projects/-workspace p-rel
        mkfifo p-fifo
        cd {HOME}
        ln -s {s} c-abs
        ln -s /proc/self/root{s} c-proc
        ln -s ../../secrets c-rel
        ln -s .claude c-loop
    """)
    assert [m["text"] for m in read(http, sid).json()["messages"]] == [real]

    groups = [(folder, f"{sid}.jsonl", "f-abs", "f-proc", "f-rel", "f-loop", "f-zero",
               "f-fifo", "f-big"),
              (f"{HOME}/.claude/projects", "-workspace", "p-abs", "p-proc", "p-rel", "p-fifo"),
              (HOME, ".claude", "c-abs", "c-proc", "c-rel", "c-loop")]
    argv = ["perl", "-e", SWAPPER, *("\t".join(g) for g in groups)]
    seen: collections.Counter[str] = collections.Counter()
    cursor = "0"

    def once(n: int) -> None:
        nonlocal cursor
        # From the start, and from the cursor of the last answer (wherever it points).
        r = read(http, sid, cursor if n % 3 == 2 else "0")
        assert canary.encode() not in r.content, r.text
        assert r.status_code in (200, 409), (r.status_code, r.text)
        body = r.json()
        if r.status_code == 409:
            words = body["error"]
            seen["symlink"] += "symlink" in words
            seen["not regular"] += "not a regular file" in words
            seen["refused"] += 1
            return
        texts = [m["text"] for m in body["messages"]]
        # The real line, or nothing (the huge line passed over, or read past already).
        assert texts in ([real], []), body
        seen["real" if texts else "empty"] += 1
        cursor = body["cursor"]

    race(container, argv, home, once)
    # The positive controls: the reads really saw the real transcript and the hostile
    # entries (refused as what they are).
    assert seen["real"] and seen["symlink"] and seen["not regular"], seen
    assert [m["text"] for m in read(http, sid).json()["messages"]] == [real]
    assert http.get("/api/health").status_code == 200


def test_hostile_lines_are_passed_over_and_bad_cursors_refused(
        appliance: Appliance, http: httpx.Client, repo: Path) -> None:
    session, container = start_session(appliance, http, repo, "claude")
    sid = session["id"]
    path = f"{HOME}/.claude/projects/-workspace/{sid}.jsonl"
    deep = 100_000  # past any recursion limit
    nearly = 990  # parses on a fresh stack, then breaks a deeper one (the JSON encoder)
    tool_use = ('{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t",'
                '"name":"Bash","input":%s}]}}')
    hostile = [
        tool_use % ("[" * nearly + "]" * nearly),
        tool_use % '{"n": 1e999}',
        tool_use % '{"n": NaN}',
        '{"type":"user","message":{"content":"' + "\\u0000" * 10 + '"}, "x": ' + "9" * 5000
        + "}",
        '{"type":"user","timestamp":{"not":"a string"},"message":{"content":"odd ts"}}',
    ]
    agent(container, f"mkdir -p $(dirname {path})")
    append(container, path, line("user", "before"))
    # Made in the container: one argument cannot carry it (128 KiB at most).
    agent_argv(container, ["perl", "-e", NEST, path, str(deep)])
    append(container, path, *hostile, line("assistant", "after"))
    r = read(http, sid)
    assert r.status_code == 200, r.text
    messages = r.json()["messages"]
    assert [m["text"] for m in messages] == ["before", "odd ts", "after"], messages
    assert messages[1]["ts"] is None
    cursor = r.json()["cursor"]

    # A line of a gibibyte (sparse: costs no disk), then a real one: every answer is
    # bounded, and polling with the cursor gets past the huge line in a bounded number of
    # answers instead of re-reading its start for ever.
    agent(container, f"truncate -s +{GIB} {path} && "
          f"printf '\\n%s\\n' '{line('assistant', 'after the huge line')}' >> {path}")
    got: list[str] = []
    polls = 0
    while not got and polls < 64:
        polls += 1
        r = read(http, sid, cursor)
        assert r.status_code == 200, r.text
        got = [m["text"] for m in r.json()["messages"]]
        assert int(r.json()["cursor"]) >= int(cursor)
        cursor = r.json()["cursor"]
    assert got == ["after the huge line"], (polls, got)
    assert read(http, sid, cursor).json()["messages"] == []

    # Cursors: only the decimal digits an earlier answer gave; a clear 400 otherwise.
    for bad in ("\u00b2", "\u0663", "9" * 5000, "-1", "1e3", " 1", "0x10"):
        r = read(http, sid, bad)
        assert r.status_code == 400 and r.json()["field"] == "after", (bad, r.text)

    # A write lease on the log, its signal to let go ignored: an open that waits for it
    # would hang the reader for the kernel's lease-break time, again for every new lease.
    home = appliance.settings.homes_dir / sid
    container.exec_run(["perl", "-e", LEASER, path, f"{HOME}/.leased", f"{HOME}/.unlease"],
                       user=AGENT, detach=True)
    wait_for((home / ".leased").exists, timeout=30, what="the lease")
    r = read(http, sid)
    assert r.status_code == 409 and "lease" in r.json()["error"], r.text
    (home / ".unlease").touch()
    wait_for(lambda: not (home / ".leased").exists(), timeout=30, what="the lease to go")
    assert [m["text"] for m in read(http, sid).json()["messages"]] == ["before", "odd ts",
                                                                        "after"]
    assert http.get("/api/health").status_code == 200


def test_codex_logs_skip_links_and_fifos_and_refuse_a_million_files(
        appliance: Appliance, http: httpx.Client, repo: Path) -> None:
    session, container = start_session(appliance, http, repo, "codex")
    sid = session["id"]
    canary = f"CANARY-{uuid.uuid4().hex}"
    secrets = appliance.settings.secrets_dir
    s = str(secrets)
    plant(secrets, "codex.jsonl", canary)
    plant(secrets, "rollout-9.jsonl", canary)
    day = f"{HOME}/.codex/sessions/2025/01/01"
    agent(container, f"""set -e
        mkdir -p {day} && cd {day}
        printf '%s\\n' '{rollout("codex says hi")}' > rollout-2025-01-01T00-00-00-a.jsonl
        ln -s {s}/codex.jsonl rollout-2025-01-01T00-00-01-b.jsonl
        ln -s /proc/self/root{s}/codex.jsonl rollout-2025-01-01T00-00-02-c.jsonl
        mkfifo rollout-2025-01-01T00-00-03-d.jsonl
        ln -s {s} ../02
        ln -s /proc/self/root{s} ../03
    """)
    # A writer already waiting on the FIFO: opening it to read would take its line.
    agent(container, f"(echo '{rollout('from the fifo')}' > {day}/rollout-2025-01-01T00-00-03-d"
          ".jsonl &) ; true")
    r = read(http, sid)
    assert canary.encode() not in r.content
    assert r.status_code == 200, r.text
    assert [m["text"] for m in r.json()["messages"]] == ["codex says hi"]

    # A million tiny rollout files (hard links: no inodes to spare, still a million names).
    agent(container, f"mkdir {day}/../04 && cd {day}/../04 && perl -e '"
          'for (1 .. 1_000_000) { my $s = "src" . int($_ / 60000);'
          ' unless (-e $s) { open(my $f, ">", $s) or die; print $f "{}\\n"; close $f }'
          ' link $s, "rollout-$_.jsonl" or die "$_: $!" }' "'")
    r = read(http, sid)
    assert r.status_code == 409, r.text
    assert "more than" in r.json()["error"] and ".codex/sessions" in r.json()["error"], r.text
    # Nothing is lost: once the agent tidies up, the log reads again from the start.
    agent(container, f"rm -rf {day}/../04")
    assert [m["text"] for m in read(http, sid).json()["messages"]] == ["codex says hi"]
    assert http.get("/api/health").status_code == 200
