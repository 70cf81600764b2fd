"""Files, file, diff and transcript of a Kubernetes session read INSIDE its pod (no
``volume_root``: the appliance does not see the cluster's volumes), played by a hostile agent.

Pods run on the FAKE API server (the one test double: no real API server can run here; see
tests/fakes/kube_api.py) as containers of the real agent image on the real Docker engine;
reads go through the real exec websocket. The agent (uid 1000, inside the pod) plants
symlinks to /etc/passwd, the service account token path and /, names with newlines and
escape sequences (one spelled like a forged entry), a FIFO, a 2 GiB file, a folder of more
than 10,000 entries, and turns its transcript into a symlink and a FIFO. The API never
follows, never hangs, never answers 500, and says what it refused the way it does for a
Docker session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import docker
import httpx
import pytest

from appliance.agents.claude_setup import project_folder
from tests.support.appliance import wait_for
from tests.support.engine import AGENT_IMAGE, ensure_agent_image
from tests.support.kube import Kube, kube_appliance

pytestmark = pytest.mark.docker

EVIL = "evil\nname\x1b[31m"
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    ensure_agent_image()
    with kube_appliance(tmp_path_factory.mktemp("kfiles"), image=AGENT_IMAGE, agents=False,
                        host_view=False) as k:
        s = k.create("kfiles")
        assert s["phase"] == "running", s
        yield k


def as_agent(k: Kube, script: str, *args: str) -> str:
    """``script`` in the pod's agent container as uid 1000, in /workspace."""
    with closing(docker.from_env()) as c:
        done = c.containers.get(k.container("clauderon-kfiles")).exec_run(
            ["sh", "-c", script, "sh", *args], user="1000:1000", workdir="/workspace")
    out = done.output.decode(errors="replace")
    assert done.exit_code == 0, out
    return out


def get(k: Kube, route: str, **params: str) -> httpx.Response:
    r = k.app.http(timeout=120).get(f"/api/sessions/kfiles/{route}", params=params)
    assert r.status_code < 500, (r.status_code, r.text)
    return r


def body(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    found: dict[str, Any] = r.json()
    return found


@pytest.fixture(scope="module")
def planted(kube: Kube) -> Kube:
    as_agent(kube, 'mkdir -p src && echo "print(1)" > src/app.py && printf "a\\0b" > bin && '
                   f'ln -s /etc/passwd passwd-link && ln -s {TOKEN} token-link && '
                   'ln -s / root-link && mkfifo pipe && truncate -s 2G big && '
                   'printf hi > "$1" && mkdir many && cd many && seq 1 10050 | xargs touch',
             EVIL)
    return kube


def test_listing_types_everything_and_follows_nothing(planted: Kube) -> None:
    root = body(get(planted, "files"))
    kinds = {e["name"]: (e["type"], e["size"]) for e in root["entries"]}
    assert kinds == {
        "README.md": ("file", len("hello from the remote\n")), "src": ("dir", None),
        "bin": ("file", 3), "passwd-link": ("symlink", None), "token-link": ("symlink", None),
        "root-link": ("symlink", None), "pipe": ("other", None), "big": ("file", 2 << 30),
        EVIL: ("file", 2), "many": ("dir", None)}
    assert not root["truncated"] and root["path"] == ""
    assert [e["type"] for e in root["entries"][:2]] == ["dir", "dir"]  # folders first
    src = body(get(planted, "files", path="src"))
    assert [(e["name"], e["path"]) for e in src["entries"]] == [("app.py", "src/app.py")]
    many = body(get(planted, "files", path="many"))
    assert many["truncated"] and len(many["entries"]) == 10_000


def test_a_name_cannot_forge_entries(planted: Kube) -> None:
    # No file name can hold NUL, so the agent tries the next best: newlines that a
    # line-based parser would split, and a name spelled like a triple.
    as_agent(planted, 'mkdir -p forge && printf x > "forge/$1"',
             "d\n0\nfake\nf\n1\nother")
    forge = body(get(planted, "files", path="forge"))
    assert [(e["name"], e["type"]) for e in forge["entries"]] == \
        [("d\n0\nfake\nf\n1\nother", "file")]


def test_files_are_never_read_through_a_symlink(planted: Kube) -> None:
    for path in ("passwd-link", "token-link", "root-link/etc/passwd", "root-link"):
        for route in ("file", "files"):
            r = get(planted, route, path=path)
            if route == "files" and path == "passwd-link":
                assert r.status_code == 400 and "symlink" in r.json()["error"], r.text
            assert r.status_code in (400, 404), (route, path, r.text)
            assert "root:x:0:0" not in r.text
    said = body(get(planted, "file", path="root-link/etc/passwd"), 400)
    assert said["error"] == "'root-link' is a symlink; symlinks are listed but never followed"
    assert said["field"] == "path"


def test_a_fifo_a_huge_file_and_binary(planted: Kube) -> None:
    fifo = body(get(planted, "file", path="pipe"), 400)  # answered: nothing opened it
    assert "not a regular file" in fifo["error"]
    big = body(get(planted, "file", path="big"))
    assert big["size"] == 2 << 30 and big["truncated"] and big["binary"]
    assert body(get(planted, "file", path="bin"))["binary"] is True
    text = body(get(planted, "file", path="src/app.py"))
    assert (text["text"], text["binary"], text["truncated"]) == ("print(1)\n", False, False)
    assert body(get(planted, "file", path=EVIL))["text"] == "hi"


def test_paths_are_refused_the_same_way(planted: Kube) -> None:
    for path, needle in (("/etc/passwd", "absolute"), ("../etc/passwd", "'..'"),
                         ("src/../../x", "'..'"), ("a\0b", "NUL"), ("a" * 5000, "4096"),
                         ("src", "is a folder"), ("README.md/x", "does not exist")):
        r = get(planted, "file", path=path)
        assert needle in r.json()["error"], (path, r.text)
        assert r.status_code in (400, 404), (path, r.text)
    assert body(get(planted, "file", path="nope"), 404)["error"] == \
        "'nope' does not exist in the worktree"
    assert "is not a folder" in body(get(planted, "files", path="README.md"), 400)["error"]


def test_transcript_is_read_in_the_pod_and_never_followed(planted: Kube) -> None:
    s = planted.app.session("kfiles")
    log = f"/home/agent/.claude/projects/{project_folder('/workspace')}/{s['id']}.jsonl"
    line = json.dumps({"type": "user", "message": {"content": "hello from the pod"}})
    as_agent(planted, 'mkdir -p "$(dirname "$1")" && printf "%s\\n" "$2" > "$1"', log, line)
    page = body(get(planted, "transcript"))
    assert "hello from the pod" in json.dumps(page["messages"])
    assert page["cursor"] == str(len(line) + 1)
    as_agent(planted, 'rm "$1" && ln -s /etc/passwd "$1"', log)
    refused = body(get(planted, "transcript"), 409)
    assert "symlink" in refused["error"] and "root:x" not in json.dumps(refused)
    as_agent(planted, 'rm "$1" && mkfifo "$1"', log)
    assert "not a regular file" in body(get(planted, "transcript"), 409)["error"]
    as_agent(planted, 'rm "$1"', log)
    assert body(get(planted, "transcript"))["messages"] == []


def test_diff_is_the_branch_fetched_into_the_users_repository(planted: Kube) -> None:
    as_agent(planted, "echo work > work.txt && git add work.txt && git commit -qm 'agent work'"
                      " && sleep 1")
    wait_for(lambda: planted.git_log("refs/heads/clauderon/kfiles")[:1] == ["agent work"],
             timeout=60, what="the agent's commit in the user's repository")
    diff = body(get(planted, "diff"))
    assert diff["files"] == [{"status": "A", "path": "work.txt"}]
    assert "+work" in diff["diff"] and diff["merge_base"]


def test_a_stopped_pod_says_how_to_read_it(planted: Kube) -> None:
    """Last: it archives the module's session. Its branch is still in the user's
    repository, so the diff still answers."""
    planted.app.client().post("/api/sessions/kfiles/archive", {})
    planted.app.wait_phase("kfiles", "archived", timeout=60)
    said = body(get(planted, "files"), 409)["error"]
    assert "not running" in said and "volume_root" in said
    assert "files" in body(get(planted, "diff"))
