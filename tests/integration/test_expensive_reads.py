"""The API's reads against an agent that makes them expensive for everyone.

The API is one process with one loop, and what it reads for the web UI, the TUI and the CLI
(folders, the timeline, the transcript) the agent writes, from inside its real container as
uid 1000. Each test plays an agent that stays within every limit the appliance sets and
still makes one read pathological: the answer must stay bounded (cut, and saying so) and a
neighbour's reads must not wait behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.agent_app import as_agent, create
from tests.support.appliance import Appliance

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

