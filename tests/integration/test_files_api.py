"""The routes the web UI reads a session through: tree, file, diff, uploads, audit, repo check.

Real services on a temporary CLAUDERON_HOME, a real git repository and the real engine; the
session is created through the API and the reconciler makes its worktree.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from appliance.audit import AuditRecord, Decision
from tests.support.appliance import Appliance

#: Container names are global on the engine: a name no other run uses.
NAME = f"files-{uuid.uuid4().hex[:8]}"


def png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def session(appliance: Appliance, http: httpx.Client, repo: Path) -> dict[str, Any]:
    r = http.post("/api/sessions", json={"repo_path": str(repo), "name": NAME})
    assert r.status_code == 202, r.text
    return appliance.wait_phase(NAME, "running")


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] and body["code"]
    return body


def test_tree_and_file(http: httpx.Client, session: dict[str, Any]) -> None:
    root = http.get(f"/api/sessions/{NAME}/files").json()
    assert root["path"] == "" and root["truncated"] is False
    names = [(e["name"], e["type"]) for e in root["entries"]]
    assert names == [("src", "dir"), ("README.md", "file")]  # folders first, no .git
    sub = http.get(f"/api/sessions/{NAME}/files", params={"path": "src"}).json()
    assert sub["entries"] == [{"name": "app.py", "path": "src/app.py", "type": "file",
                               "size": 12}]
    f = http.get(f"/api/sessions/{session['id']}/file", params={"path": "src/app.py"}).json()
    assert f == {"path": "src/app.py", "size": 12, "binary": False, "truncated": False,
                 "text": "print('hi')\n"}
    error(http.get(f"/api/sessions/{NAME}/file", params={"path": "nope.txt"}), 404)
    error(http.get(f"/api/sessions/{NAME}/files", params={"path": "README.md"}), 400)
    error(http.get(f"/api/sessions/{NAME}/file", params={"path": "src"}), 400)
    error(http.get("/api/sessions/ghost/files"), 404)


@pytest.mark.parametrize("path", ["../../etc/passwd", "src/../../x", "/etc/passwd", "..",
                                  "escape/passwd", "escape"])
def test_paths_that_escape_are_refused(http: httpx.Client, session: dict[str, Any],
                                       path: str) -> None:
    wt = Path(session["worktree_path"])
    if not (wt / "escape").is_symlink():
        os.symlink("/etc", wt / "escape")
    for route in ("file", "files"):
        body = error(http.get(f"/api/sessions/{NAME}/{route}", params={"path": path}), 400)
        assert body["field"] == "path"


def test_a_tilde_is_an_ordinary_name(http: httpx.Client, session: dict[str, Any]) -> None:
    """Nothing expands ``~`` (the path is walked name by name): it names a file like any."""
    error(http.get(f"/api/sessions/{NAME}/file", params={"path": "~root"}), 404)
    (Path(session["worktree_path"]) / "~notes").write_text("tilde\n")
    assert http.get(f"/api/sessions/{NAME}/file",
                    params={"path": "~notes"}).json()["text"] == "tilde\n"


def test_a_symlink_is_listed_but_never_followed(http: httpx.Client,
                                               session: dict[str, Any]) -> None:
    """Even one that leads inside: where it leads is decided when it is followed, and the
    agent can change that between any two steps of ours."""
    wt = Path(session["worktree_path"])
    os.symlink("src/app.py", wt / "link.py")
    os.symlink("src", wt / "link-dir")
    listing = http.get(f"/api/sessions/{NAME}/files").json()["entries"]
    assert {"name": "link.py", "path": "link.py", "type": "symlink", "size": None} in listing
    for route, path in (("file", "link.py"), ("files", "link-dir"), ("file", "link-dir/app.py")):
        body = error(http.get(f"/api/sessions/{NAME}/{route}", params={"path": path}), 400)
        assert body["field"] == "path" and "symlink" in body["error"]


def test_diff_against_the_base(http: httpx.Client, session: dict[str, Any]) -> None:
    empty = http.get(f"/api/sessions/{NAME}/diff").json()
    assert empty["base_ref"] == "main" and empty["files"] == [] and empty["diff"] == ""
    wt = Path(session["worktree_path"])
    (wt / "README.md").write_text("hello\nworld\n")
    (wt / "notes.txt").write_text("new file\n")
    d = http.get(f"/api/sessions/{NAME}/diff").json()
    assert d["files"] == [{"status": "M", "path": "README.md"},
                          {"status": "?", "path": "notes.txt"}]
    assert "+world" in d["diff"] and "+new file" in d["diff"]
    assert "a/README.md" in d["diff"] and "b/notes.txt" in d["diff"]


def test_uploads_take_images_only(appliance: Appliance, http: httpx.Client,
                                  session: dict[str, Any]) -> None:
    image = png()
    r = http.post(f"/api/sessions/{NAME}/uploads", files={"file": ("shot one.png", image)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["mime"] == "image/png" and body["size"] == len(image)
    assert body["name"].endswith("_shot_one.png")
    assert body["container_path"] == f"/workspace-uploads/{body['name']}"
    stored = appliance.settings.uploads_dir / session["id"] / body["name"]
    assert Path(body["path"]) == stored and stored.read_bytes() == image
    if os.geteuid() == 0:
        assert stored.stat().st_uid == 1000  # the agent, not root, must read it
        # The folder stays the appliance's: the agent only ever reads it.
        assert stored.parent.stat().st_uid == 0
    assert stat.S_IMODE(stored.stat().st_mode) == 0o644
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o755

    text = http.post(f"/api/sessions/{NAME}/uploads",
                     files={"file": ("evil.png", b"#!/bin/sh\necho not an image\n")})
    assert error(text, 415)["field"] == "file"
    big = image + b"\x00" * (10 * 1024 * 1024)
    assert error(http.post(f"/api/sessions/{NAME}/uploads", files={"file": ("big.png", big)}),
                 413)["code"] == "payload_too_large"
    missing = http.post(f"/api/sessions/{NAME}/uploads", files={"other": ("a.png", image)})
    assert error(missing, 400)["field"] == "file"


def test_audit_lines_of_this_session_only(appliance: Appliance, http: httpx.Client,
                                          session: dict[str, Any]) -> None:
    assert http.get(f"/api/sessions/{NAME}/audit").json() == {"lines": []}

    def record(i: int, sid: str) -> str:
        return AuditRecord(ts=f"2025-01-01T00:00:{i:02d}Z", id=f"r{i}", session=sid,
                           method="GET", host="api.github.com", path=f"/p{i}", status=200,
                           bytes_in=1, bytes_out=2, duration_ms=3.0, credential="github",
                           decision=Decision.INJECTED).to_json_line()

    lines = [record(i, session["id"] if i % 2 else "someone-else") for i in range(10)]
    lines.insert(3, "{torn line\n")
    appliance.settings.audit_path.write_text("".join(lines))
    got = http.get(f"/api/sessions/{NAME}/audit", params={"limit": "3"}).json()["lines"]
    assert [line["id"] for line in got] == ["r5", "r7", "r9"]
    assert got[0]["decision"] == "injected" and got[0]["session"] == session["id"]
    assert json.dumps(got)  # plain JSON values
    error(http.get(f"/api/sessions/{NAME}/audit", params={"limit": "x"}), 400)


def test_repo_check(http: httpx.Client, repo: Path, tmp_path: Path) -> None:
    good = http.get("/api/repos/check", params={"path": str(repo / "src")}).json()
    assert good == {"ok": True, "root": str(repo), "subdirectory": "src", "branch": "main"}
    for bad, words in [("relative/path", "absolute"), (str(tmp_path / "nothing"), "not exist"),
                       (str(tmp_path), "not inside a git repository")]:
        r = http.get("/api/repos/check", params={"path": bad})
        assert r.status_code == 200
        assert r.json()["ok"] is False and words in r.json()["error"]


def test_the_web_ui_is_served_with_a_fallback(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    deep = http.get("/s/some-session/files")
    assert deep.status_code == 200 and deep.text == page.text
    assert error(http.get("/api/no-such-route"), 404)["code"] == "not_found"
    for missing in ("/assets/missing-file.js", "/assets/no-dot", "/assets/"):
        # Never the app's page: it would be cached for a year under that name.
        r = http.get(missing)
        assert r.status_code == 404 and "immutable" not in r.headers.get("cache-control", ""), (
            missing, r.status_code, r.headers)
    for sneaky in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/assets/..%2f..%2fapp.py"):
        r = http.get(sneaky)
        assert "root:" not in r.text and "create_app" not in r.text
        assert r.status_code == 404 or r.text == page.text


async def test_a_change_made_by_the_api_itself_is_pushed_live(
        appliance: Appliance, session: dict[str, Any]) -> None:
    """The UI's access-mode switch (and hooks) write from the API's own connection; viewers
    of /ws/events must see those at once, not at the next write by another process."""
    base = f"127.0.0.1:{appliance.http_port}"
    with trio.fail_after(30):
        async with open_websocket_url(f"ws://{base}/ws/events",
                                      extra_headers=appliance.ws_headers()) as ws:
            assert json.loads(await ws.get_message())["type"] == "connected"
            r = await trio.to_thread.run_sync(lambda: httpx.post(
                f"http://{base}/api/sessions/{NAME}/access-mode",
                json={"access_mode": "read-only"}, timeout=10,
                headers=appliance.auth_headers()))
            assert r.status_code == 200, r.text
            # Other writes (the reconciler's) may come first; the switch must arrive live.
            while True:
                msg = json.loads(await ws.get_message())
                payload = msg["event"]["payload"]
                if msg["event"]["kind"] == "updated" and \
                        payload["session"]["access_mode"] == "read-only":
                    break
