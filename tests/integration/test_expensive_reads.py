"""The API's reads against an agent that makes them expensive for everyone.

The API is one process with one loop, and what it reads for the web UI, the TUI and the CLI
(folders, the timeline, the transcript) the agent writes, from inside its real container as
uid 1000. Each test plays an agent that stays within every limit the appliance sets and
still makes one read pathological: the answer must stay bounded (cut, and saying so) and a
neighbour's reads must not wait behind it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import httpx

from appliance import timeline, timeline_read
from appliance.agents import logs
from appliance.agents.logs import BLOCKS
from appliance.timeline import Source
from tests.support.agent_app import as_agent, create
from tests.support.appliance import Appliance, wait_for

#: A name of 255 bytes the answer writes as six each (``\\u0001``): control characters,
#: the last four telling the files apart.
MAKE_WIDE = r"""
my ($depth, $files) = @ARGV;
my $wide = "\x01" x 251;
my @path;
for (1 .. $depth) {  # one step at a time: the whole path is longer than a syscall takes
    my $name = "$wide\x02\x02\x02\x02";
    mkdir $name or die "$!"; chdir $name or die "$!"; push @path, $name;
}
for my $i (0 .. $files - 1) {
    my $tail = join "", map { chr(1 + int($i / 31 ** $_) % 31) } 0 .. 3;
    open(my $f, ">", "$wide$tail") or die "$!"; close $f;
}
print join "/", @path;
"""


def test_a_folder_of_names_that_swell_when_escaped_is_cut(
        app: Appliance, repo: Path) -> None:
    """15 folders deep (a path of 3,840 bytes) and 3,000 files there, every name of
    control characters: each entry's name and path are 6 times as long in JSON (26 KiB an
    entry), and the listing was 80 MiB built on the API's loop, where a folder of 10,000
    ordinary names is one."""
    s = create(app, repo, "wide")
    deep = as_agent(app, s, f"perl -e '{MAKE_WIDE}' 15 3000")
    assert len(deep.encode()) == 15 * 256 - 1
    http = app.http(timeout=120)
    r = http.get(f"/api/sessions/{s['id']}/files", params={"path": deep})
    assert r.status_code == 200, r.text[:300]
    assert len(r.content) < 5 << 20, len(r.content)  # where it was 80 MiB
    body: dict[str, Any] = r.json()
    assert body["truncated"] and body["entries"]  # cut, and saying so
    assert all(e["path"] == f"{deep}/{e['name']}" for e in body["entries"])
    # An ordinary folder is listed whole, as before.
    as_agent(app, s, "mkdir many && cd many && seq -f 'file-%05g.txt' 10000 | xargs touch")
    r = http.get(f"/api/sessions/{s['id']}/files", params={"path": "many"})
    assert r.status_code == 200
    assert len(r.json()["entries"]) == 10_000 and not r.json()["truncated"]


#: COUNT empty commits (``git fast-import`` writes a million in seconds, one pack): on the
#: session branch after its tip, or (``merged``) on a line of their own merged into it; then
#: one more on the branch, "the newest".
MILLION = r"""
branch=$(git symbolic-ref --short HEAD)
perl -e '
    my ($branch, $merged) = @ARGV;
    my $line = $merged ? "side" : $branch;
    my $from = "from refs/heads/$branch^0\n";  # the tip before the import
    for my $i (1 .. COUNT) {
        print "commit refs/heads/$line\ncommitter A <a\@x> ", 1700000000 + $i,
              " +0000\ndata 2\nc\n", ($i == 1 && !$merged ? $from : ""), "\n";
    }
    print "commit refs/heads/$branch\ncommitter A <a\@x> 1800000000 +0000\n",
          "data 11\nthe newest\n", ($merged ? "${from}merge refs/heads/side\n" : ""), "\n";
' "$branch" MERGED | git fast-import --quiet
git reset -q --soft "$branch"
git rev-list --count HEAD
"""


def million(app: Appliance, session: dict[str, Any], *, merged: bool,
            count: int = 1_000_000) -> None:
    made = as_agent(app, session, MILLION.replace("MERGED", "1" if merged else "0")
                    .replace("COUNT", str(count)))
    assert int(made.split()[-1]) > count, made


def logs_of(shadows: Path) -> list[int]:
    """The host's git processes reading a session's commits (in its shadows: the count of
    what its branch holds, the checked copy, the ``log``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            where = os.readlink(proc / "cwd")
        except OSError:
            continue  # gone, or not ours to look at
        if argv[0].endswith(b"git") and where.startswith(str(shadows)):
            found.append(int(proc.name))
    return found


def test_a_branch_of_a_million_commits_holds_no_reader_a_neighbour_needs(
        app: Appliance, repo: Path) -> None:
    """The timeline and the transcript share a few readers. A branch of a million commits
    keeps the timeline's git walking for seconds (counting what the branch holds, as a sync
    does, before its commits are read), each time the person's timeline asks (the web UI
    and the TUI follow it): two pages of it at once held every reader, and a neighbour's
    transcript waited for them, however small it was."""
    hostile = create(app, repo, "long")
    neighbour = create(app, repo, "next")
    million(app, hostile, merged=True)  # a long line merged in: git walks all of it
    shadows = app.settings.shadows_dir / hostile["id"]
    http = app.http(timeout=120)
    answered: list[str] = []
    pages: list[httpx.Response] = []

    def page() -> None:
        pages.append(http.get(f"/api/sessions/{hostile['id']}/timeline"))
        answered.append("the hostile timeline")

    readers = [threading.Thread(target=page, daemon=True) for _ in range(2)]
    for t in readers:
        t.start()
    # Both pages are in: two logs walk the branch, or one does and the other waits its turn.
    wait_for(lambda: len(logs_of(shadows)) == 2 or (
        logs_of(shadows) and "a read of long waits" in app.log("api")),
        timeout=60, what="both pages of the hostile timeline to be read")
    r = http.get(f"/api/sessions/{neighbour['id']}/transcript")
    answered.append("the neighbour's transcript")
    assert r.status_code == 200, r.text
    assert answered[0] == "the neighbour's transcript", answered
    assert logs_of(shadows)  # still walking: the neighbour did not wait for it
    for t in readers:
        t.join(120)
    # The hostile pages are answered too, their commits shown or the log's deadline noted.
    assert [p.status_code for p in pages] == [200, 200], [p.text[:300] for p in pages]
    for p in pages:
        body = p.json()
        assert any(i["source"] == "commit" for i in body["items"]) or any(
            "commits" in n for n in body["notes"]), body


def test_a_branch_of_millions_of_commits_is_noted_not_read_unchecked(app: Appliance,
                                                                      repo: Path) -> None:
    """git's log ordered the whole branch to list its newest thousand: two million commits
    took it past its 5 s deadline, and the log now stops a thousand first parents below the
    tip. But the log read the agent's packs unchecked; the commits are now copied checked
    first, counted as a sync counts them, and two million are more than that reads within
    the deadline (or a sync brings in): the page is answered, listing none of them and
    saying why."""
    s = create(app, repo, "line")
    million(app, s, merged=False, count=2_000_000)
    r = app.http(timeout=120).get(f"/api/sessions/{s['id']}/timeline")
    assert r.status_code == 200, r.text
    page = r.json()
    assert not [i for i in page["items"] if i["source"] == "commit"], page["items"]
    assert any(n.startswith("the commits in") for n in page["notes"]), page["notes"]


def test_a_diff_of_two_hundred_thousand_files_names_a_bounded_few(
        app: Appliance, repo: Path) -> None:
    """The diff names its files as well as showing the first 2 MiB of what changed: the
    list was read to 4 MiB of git's output, and 200,000 new files were as many records,
    built and encoded on the API's one loop, for a diff that shows a few thousand."""
    s = create(app, repo, "wide-diff")
    as_agent(app, s, "mkdir -p d && cd d && seq -w 200000 | xargs touch && "
                     "git add -A . && git -c user.name=A -c user.email=a@x commit -qm many")
    as_agent(app, s, "echo more >> README.md")  # and the agent's own work beside them
    r = app.http(timeout=120).get(f"/api/sessions/{s['id']}/diff")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["truncated"] and len(body["diff"].encode()) <= 2 << 20
    assert 0 < len(body["files"]) <= 10_000, len(body["files"])
    assert {"status": "M", "path": "README.md"} in body["files"]  # the first are kept


#: The transcript: one message, then COUNT lines that are JSON objects and say nothing.
HUSH = r"""
log=/home/agent/.claude/projects/-workspace/SID.jsonl
mkdir -p "${log%/*}"
perl -e 'print qq({"type":"assistant","timestamp":"2026-01-01T00:00:00Z",) .
               qq("message":{"content":"the first words"}}\n), "{}\n" x COUNT' > "$log"
stat -c %s "$log"
"""


def test_a_transcript_of_lines_that_say_nothing_is_read_a_bounded_count_a_page(
        app: Appliance, repo: Path) -> None:
    """The timeline split and parsed every line of its 1 MiB window of the transcript for
    each page, where the chat stops at 20,000 lines an answer: 300,000 empty objects were as
    many parses a page (seconds of the API's CPU, holding the lock its loop needs), and tiny
    tool results as many entries built, for a page that shows 200. A page now reads back
    20,000 lines at most, says so, and the pages after go on from there."""
    s = create(app, repo, "hush")
    count, lines = 300_000, logs.MAX_LINES
    size = int(as_agent(app, s, HUSH.replace("SID", s["id"]).replace("COUNT", str(count))))
    assert size < timeline_read.WINDOW  # all of it in the page's window
    http = app.http(timeout=60)
    before, pages = None, 0
    for pages in range(1, count // lines + 3):
        r = http.get(f"/api/sessions/{s['id']}/timeline",
                     params={"limit": "200", **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        if any(i["title"] == "the first words" for i in page["items"]):
            break
        assert any(f"{lines:,} lines" in n for n in page["notes"]), page["notes"]
        read = size - pages * lines * 3  # where the page's reading stopped, a line's start
        assert timeline.parse_cursor(page["cursor"])[Source.MESSAGE] == \
            read * BLOCKS + BLOCKS - 1
        before = page["cursor"]
    assert pages == count // lines + 1  # every line read once, 20,000 a page


#: The transcript: the first words, COUNT lines of 30,000 empty blocks (90 KiB, 60,000
#: values each: ``{},`` in 3 bytes), the last words.
EMPTY_BLOCKS = r"""
log=/home/agent/.claude/projects/-workspace/SID.jsonl
mkdir -p "${log%/*}"
perl -e 'sub say { qq({"type":"assistant","message":{"content":"$_[0]"}}\n) }
         print say("the first words"),
               (qq({"type":"assistant","message":{"content":[) . "{}," x 29_999 . qq({}]}}\n))
               x COUNT, say("the last words")' > "$log"
stat -c %s "$log"
"""


def test_a_transcript_of_lines_of_empty_blocks_is_parsed_a_bounded_count_a_page(
        app: Appliance, repo: Path) -> None:
    """The chat parsed 4 MiB of the transcript an answer, whatever the lines held: lines of
    ``{},`` were 1.4 million objects built and walked for one answer (0.7 s of the API's
    CPU, the lock its loop needs held as long), and the person's browser asks again each
    time the agent writes. An answer now parses 200,000 values at most (counted before a
    line is parsed): three such lines, and the answers after go on from there."""
    s = create(app, repo, "blocks")
    count = 40
    size = int(as_agent(app, s, EMPTY_BLOCKS.replace("SID", s["id"]).replace("COUNT", str(count))))
    first = len(b'{"type":"assistant","message":{"content":"the first words"}}\n')
    line = len(b'{"type":"assistant","message":{"content":[]}}\n') + 3 * 30_000 - 1
    assert size < 4 << 20  # all of it within one answer's bytes
    http = app.http(timeout=60)
    cursor, pages, said = "0", 0, []
    while not said or said[-1] != "the last words":
        r = http.get(f"/api/sessions/{s['id']}/transcript", params={"after": cursor})
        assert r.status_code == 200, r.text[:300]
        page = r.json()
        said += [m["text"] for m in page["messages"] if m["text"]]
        read = int(page["cursor"]) - int(cursor)
        assert read <= first + 3 * line, (pages, read, size)  # three lines an answer
        cursor, pages = page["cursor"], pages + 1
    assert said == ["the first words", "the last words"]
    assert int(cursor) == size and pages == -(-count // 3)  # every line read once
