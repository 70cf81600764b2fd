"""An agent that fills the disk cannot buy unrecorded requests (real engine, real proxy,
real tmpfs as the appliance's home, the hostile agent in its container as uid 1000).

The workspace is the host's disk. An agent writing until it is full would leave no room for
the audit log, and a proxy that went on forwarding would forward requests nobody can see
afterwards. Below the audit log's reserve the proxy forwards nothing: it answers 503 saying
why and what to do, the upstream sees nothing, and `clauderon status` says the disk is full.
Space freed, requests go through again, each with its audit line.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.audit import AUDIT_RESERVE_BYTES, room_at
from cli import calls
from tests.support.agent_app import as_agent, create, in_container, through_fake_models
from tests.support.appliance import Appliance
from tests.support.fake_models import FakeModels

PROBE = ('curl -s --max-time 20 -o /tmp/answer -w "%{http_code}" '
         "https://api.anthropic.com/v1/disk-probe-$1; echo; cat /tmp/answer")


@pytest.fixture
def app(small_disk: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with through_fake_models(small_disk / "home", agent_image, fake) as a:
        yield a


def probe(app: Appliance, session: dict[str, object], tag: str) -> tuple[str, str]:
    out = as_agent(app, session, f"set -- {tag}\n{PROBE}")
    code, _, body = out.partition("\n")
    return code.strip(), body


def audited(app: Appliance, path: str) -> list[dict[str, object]]:
    audit = app.settings.audit_path
    return [line for line in map(json.loads, audit.read_text().splitlines())
            if line.get("path") == path]


def test_an_agent_that_fills_the_disk_gets_no_unrecorded_request(
        app: Appliance, repo: Path, fake: FakeModels, small_disk: Path) -> None:
    hog, calm = (create(app, repo, f"{role}-{uuid.uuid4().hex[:6]}") for role in ("hog", "calm"))
    # The positive control: with room, a request goes through and has its audit line.
    assert probe(app, calm, "before")[0] == "404"  # the fake's answer
    assert any(r.path == "/v1/disk-probe-before" for r in fake.seen)
    assert len(audited(app, "/v1/disk-probe-before")) == 1

    # The other writes outside its workspace: into its container's own layer (the engine's
    # disk) and into its home (a folder of the appliance's): named too, with that part said.
    in_container(app, calm, "head -c $((24 << 20)) /dev/zero > /tmp/scratch && "
                            "head -c $((16 << 20)) /dev/zero > ~/hoard")
    # The agent writes into its workspace until the host's disk refuses.
    _, out = in_container(app, hog, "dd if=/dev/zero of=fill bs=1M 2>&1; df -k .",
                             ok=False)
    assert "No space left on device" in out, out
    assert room_at(small_disk).free_bytes < AUDIT_RESERVE_BYTES

    seen = len(fake.seen)
    for who, tag in ((hog, "hog"), (calm, "calm")):
        status, body = probe(app, who, f"full-{tag}")
        assert status == "503", (status, body)
        assert "forwards nothing it cannot record" in body and "Free disk space" in body, body
    assert len(fake.seen) == seen  # nothing reached the upstream
    # The user is told, with what to do.
    status = app.cli("status", check=False)
    assert status.returncode == 1
    assert "disk         FULL" in status.stdout and "free space" in status.stdout, status.stdout
    health = app.client().run(calls.health())  # 503: degraded, every part described
    assert health["status"] == "degraded" and health["disk"]["free_bytes"] < AUDIT_RESERVE_BYTES
    # The session that filled it is named first.
    assert health["disk"]["largest"][0]["name"] == hog["name"], health["disk"]
    assert f"largest sessions: {hog['name']} " in status.stdout, status.stdout
    second = health["disk"]["largest"][1]
    assert second["name"] == calm["name"] and second["container_bytes"] >= 40 << 20, second
    assert second["bytes"] == second["workspace_bytes"] + second["container_bytes"] + \
        second["audit_bytes"]
    assert 0 < second["audit_bytes"] < 4096, second  # its few requests' lines
    assert f"{calm['name']} {second['bytes'] >> 20} MiB ({second['container_bytes'] >> 20} " \
           "MiB in its container)" in status.stdout, status.stdout
    # A create on the full disk is refused saying so, and leaves nothing behind.
    made = app.cli("create", "--repo", str(repo), "--name", "late", "--prompt", "p",
                   check=False)
    assert made.returncode != 0 and "disk is full" in made.stderr, made.stderr
    assert {x["name"] for x in app.client().get("/api/sessions")["sessions"]} == {
        hog["name"], calm["name"]}
    assert not (app.settings.worktrees_dir / "late").exists()
    assert len(app.containers()) == 2

    # The user frees the space: requests go through again, each recorded.
    (app.settings.worktrees_dir / hog["name"] / "fill").unlink()
    assert probe(app, calm, "after")[0] == "404"
    assert any(r.path == "/v1/disk-probe-after" for r in fake.seen)
    assert len(audited(app, "/v1/disk-probe-after")) == 1
    assert app.client().get("/api/health")["status"] == "ok"


@pytest.fixture
def few(few_files_disk: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with through_fake_models(few_files_disk / "home", agent_image, fake) as a:
        yield a


#: Empty files until the disk makes no more: no bytes, every file (inode) it has.
SPEND_FILES = ('mkdir -p many && cd many && i=0; while : > "$i" 2>/dev/null; '
               'do i=$((i+1)); done; echo "made $i"')


def test_an_agent_that_spends_the_disks_files_gets_no_unrecorded_request(
        few: Appliance, repo: Path, fake: FakeModels, few_files_disk: Path) -> None:
    """The disk's files (inodes) run out with its bytes to spare: the audit log's rotation,
    the database's journal and every create would fail while the disk shows room. Below the
    reserve of files the proxy forwards nothing, and the session that spent them is named,
    by its files."""
    hog, calm = (create(few, repo, f"{role}-{uuid.uuid4().hex[:6]}")
                 for role in ("hog", "calm"))
    assert probe(few, calm, "before")[0] == "404"  # the positive control
    _, out = in_container(few, hog, SPEND_FILES, ok=False)
    made = int(out.split("made ")[-1].split()[0])
    room = room_at(few_files_disk)
    assert made > 10_000 and room.short_of_files, (made, room)
    assert room.free_bytes >= AUDIT_RESERVE_BYTES  # the bytes are not what ran out

    seen = len(fake.seen)
    status, body = probe(few, calm, "files")
    assert status == "503", (status, body)
    assert "more files" in body and "forwards nothing it cannot record" in body, body
    assert len(fake.seen) == seen  # nothing reached the upstream
    disk = few.client().run(calls.health())["disk"]
    assert disk["full"] and disk["free_files"] < disk["reserve_files"], disk
    top = disk["largest"][0]
    assert top["name"] == hog["name"] and top["files"] >= made, disk["largest"]
    text = few.cli("status", check=False).stdout
    assert "below 4096 files the proxy forwards nothing" in text, text
    assert f"largest sessions: {hog['name']} {top['files']} files" in text, text
    # A create is refused up front, saying so, and leaves nothing behind.
    made = few.cli("create", "--repo", str(repo), "--name", "late", "--prompt", "p",
                   check=False)
    assert made.returncode != 0 and "disk is full" in made.stderr, made.stderr
    assert "room for" in made.stderr and "clauderon status" in made.stderr, made.stderr
    assert {x["name"] for x in few.client().get("/api/sessions")["sessions"]} == {
        hog["name"], calm["name"]}
    assert not (few.settings.worktrees_dir / "late").exists()

    # The person removes the files: requests go through again, each recorded.
    shutil.rmtree(few.settings.worktrees_dir / hog["name"] / "many")
    assert probe(few, calm, "after")[0] == "404"
    assert len(audited(few, "/v1/disk-probe-after")) == 1
    assert not few.client().run(calls.health())["disk"]["full"]
