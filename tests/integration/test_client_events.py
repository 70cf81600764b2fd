"""The one client against the real API and reconciler: the event follower (both faces), and
the CLI's create progress and ``list --watch``, which follow ``/ws/events``.

Every wait is bounded by a deadline that fails the test (never a timed assertion). The CLI
runs as the real ``clauderon`` command; ``list --watch`` runs as a process whose output is
read line by line.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from cli import calls
from cli.client import ApiClient, AsyncApiClient
from cli.eventstream import Message
from tests.support.appliance import BIN, Appliance, wait_for

DEADLINE = 90.0


def read_until(stream: Iterator[Message | None], done: Callable[[Message], bool],
               seen: list[Message]) -> Message:
    """Messages into ``seen`` until one is ``done``; fails after :data:`DEADLINE`."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        message = next(stream)
        if message is None:
            continue
        seen.append(message)
        if done(message):
            return message
    raise AssertionError(f"gave up; the last messages: {seen[-5:]}")


def phase_is(sid: str, phase: str) -> Callable[[Message], bool]:
    def check(m: Message) -> bool:
        s = (m.get("event") or {}).get("payload", {}).get("session") or {}
        return bool(s.get("id") == sid and s.get("phase") == phase)

    return check


def events(seen: list[Message]) -> list[dict[str, Any]]:
    return [m["event"] for m in seen if m["type"] == "event"]


def test_the_sync_follower_resumes_across_a_restart_of_the_api(appliance: Appliance,
                                                                repo: Path) -> None:
    client = ApiClient(appliance.settings.socket_path, timeout=10)
    seen: list[Message] = []
    with closing(client), closing(client.follow()) as stream:
        assert read_until(stream, lambda m: True, seen)["type"] == "connected"
        s = client.run(calls.create({"repo_path": str(repo), "name": "followed"}))
        read_until(stream, phase_is(s["id"], "running"), seen)
        assert [e["payload"]["step"] for e in events(seen) if e["kind"] == "progress"] == \
            ["worktree", "container", "start"]

        # The API goes away while the reconciler works: the follower says so, reconnects,
        # and resumes after the last event it saw.
        client.run(calls.act(s["id"], "stop"))
        appliance.stop("api")
        wait_for(lambda: all(c.status == "exited" for c in appliance.containers(s["id"])),
                 what="the reconciler to stop the container with the API down")
        appliance.start("api")
        read_until(stream, phase_is(s["id"], "stopped"), seen)
        client.run(calls.act(s["id"], "start"))
        read_until(stream, phase_is(s["id"], "running"), seen)
    kinds = [m["type"] for m in seen]
    assert "lost" in kinds and kinds.count("connected") >= 2, kinds
    assert kinds.index("lost") < len(kinds) - 1 - kinds[::-1].index("connected")

    # Nothing was missed or repeated: the ids are exactly the journal's, in order.
    ids = [e["id"] for e in events(seen)]
    journal: list[Message] = []
    with closing(ApiClient(appliance.settings.socket_path, timeout=10)) as fresh, \
            closing(fresh.events(after=ids[0] - 1)) as replay:
        read_until(replay, lambda m: m["type"] == "event" and m["event"]["id"] == ids[-1],
                   journal)
    assert ids == [e["id"] for e in events(journal)]


def test_the_async_follower_sees_what_the_api_and_the_agent_hooks_say(appliance: Appliance,
                                                                       repo: Path) -> None:
    async def run() -> list[dict[str, Any]]:
        api = AsyncApiClient(appliance.settings.socket_path, timeout=10)
        got: list[dict[str, Any]] = []
        stream = api.follow()
        try:
            async with asyncio.timeout(DEADLINE):
                first = await anext(stream)
                assert first is not None and first["type"] == "connected"
                s = await api.run(calls.create({"repo_path": str(repo), "name": "hooked"}))
                async for m in stream:
                    if m is None or m["type"] != "event":
                        continue
                    got.append(m["event"])
                    session = m["event"]["payload"].get("session") or {}
                    if session.get("phase") == "running" and not any(
                            e["kind"] == "hook" for e in got):
                        await asyncio.to_thread(appliance.hook, s["id"], "PermissionRequest")
                    if m["event"]["kind"] == "hook":
                        return got
        finally:
            await stream.aclose()
            await api.aclose()
        raise AssertionError("the stream ended")

    got = asyncio.run(run())
    assert got[0]["kind"] == "created"
    hook = got[-1]["payload"]
    assert hook["hook"] == "PermissionRequest"
    assert hook["session"]["agent_status"] == "waiting_approval"
    assert "waiting" in hook["session"]["filters"]


def test_cli_create_and_the_verbs_print_the_progress_their_events_carry(
        appliance: Appliance, repo: Path) -> None:
    out = appliance.cli("create", "--repo", str(repo), "--name", "shown", "--prompt", "p")
    sid = appliance.session("shown")["id"]
    assert out.stdout.splitlines() == [
        "shown  creating  worktree ▸ container ▸ start ▸ running",
        "  p",  # its title, from the prompt (no title model is configured)
        f"  branch clauderon/shown, container clauderon-{sid}"]  # named by id, not name
    assert appliance.cli("stop", "shown").stdout == "shown  stopping  stopped\n"
    assert appliance.cli("stop", "shown").stdout == "shown  stopping  stopped\n"  # no-op
    assert appliance.cli("archive", "shown").stdout == "shown  archiving  archived\n"
    assert appliance.cli("unarchive", "shown").stdout.startswith("shown  unarchiving  ")
    assert appliance.session("shown")["phase"] == "running"
    out = appliance.cli("delete", "shown", "--force")
    assert out.stdout.splitlines() == ["shown  deleting  container ▸ worktree ▸ gone",
                                       "  branch clauderon/shown kept"]
    # A refused request says why, and nothing waits.
    failed = appliance.cli("start", "nothing-here", check=False)
    assert failed.returncode != 0 and "no session named" in failed.stderr


class Watch:
    """``clauderon list --watch`` as a process; its output read line by line."""

    def __init__(self, appliance: Appliance, *args: str) -> None:
        self.proc = subprocess.Popen([str(BIN / "clauderon"), "list", "--watch", *args],
                                     env=appliance.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.text = ""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        self.reader = threading.Thread(target=lambda: [self.lines.put(x) for x in stdout])
        self.reader.start()

    def until(self, check: Callable[[list[str]], bool], what: str) -> list[str]:
        """Wait for a drawing of the table (the lines since the last header) that passes."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                self.text += self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            drawing = self.last()
            if check(drawing):
                return drawing
        raise AssertionError(f"gave up waiting for {what}; output:\n{self.text[-3000:]}")

    def last(self) -> list[str]:
        lines = self.text.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith(("NAME", "No sessions"))]
        return lines[starts[-1]:] if starts else []

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        try:
            code = self.proc.wait(timeout=30)
        finally:  # deaf to Ctrl-C: fail, but close what it holds first
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.reader.join(timeout=30)
            self.proc.stdout.close()
        with self.proc.stderr:
            return code, self.proc.stderr.read()


def names(drawing: list[str]) -> list[str]:
    return sorted(line.split()[0] for line in drawing[1:] if line and not line.startswith("("))


def rows(drawing: list[str]) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in drawing[1:]
            if line and not line.startswith("(")}


def test_list_watch_redraws_on_events_and_survives_a_restart_of_the_api(
        appliance: Appliance, repo: Path) -> None:
    everything = Watch(appliance)
    waiting = Watch(appliance, "--filter", "waiting")
    try:
        everything.until(lambda d: d == ["No sessions."], "the empty list")
        waiting.until(lambda d: d == ["No sessions."], "the empty waiting list")
        appliance.cli("create", "--repo", str(repo), "--name", "one", "--no-wait")
        everything.until(lambda d: rows(d).get("one", [""])[1:2] == ["running"],
                         "one running")
        appliance.hook("one", "Stop")
        everything.until(lambda d: "waiting-input" in rows(d).get("one", []), "its status")
        waiting.until(lambda d: names(d) == ["one"], "one waiting for me")

        appliance.stop("api")
        everything.until(lambda d: any("event stream was lost" in x for x in d), "the loss")
        appliance.start("api")
        appliance.cli("create", "--repo", str(repo), "--name", "two", "--no-wait")
        everything.until(lambda d: names(d) == ["one", "two"], "two after the restart")
        appliance.cli("archive", "one")
        everything.until(lambda d: names(d) == ["two"], "one archived (not listed)")
        waiting.until(lambda d: d == ["No sessions."], "nothing waiting")
    finally:
        code, err = everything.stop()
        waiting.stop()
    assert code == 130 and "interrupted" in err


def test_list_watch_keeps_going_when_the_api_cannot_be_asked_for_the_list(
        appliance: Appliance, repo: Path) -> None:
    """An event arrives, but the list it makes the watch read cannot be read (the API went
    away in between; here its socket's name is moved aside while an open connection still
    carries the hook). The watch says so and redraws at the next event, instead of ending."""
    appliance.cli("create", "--repo", str(repo), "--name", "asked")
    sid = appliance.session("asked")["id"]
    watch = Watch(appliance)
    try:
        watch.until(lambda d: rows(d).get("asked", [""])[1:2] == ["running"], "it running")
        with appliance.socket_http() as http:
            assert http.get("/api/health").status_code == 200  # the connection, opened
            socket_path = appliance.settings.socket_path
            aside = socket_path.with_name(socket_path.name + ".aside")
            socket_path.rename(aside)
            try:
                appliance.hook(sid, "Stop", http)
                watch.until(lambda d: any("the list could not be read" in x for x in d),
                            "the note that the list could not be read")
            finally:
                aside.rename(socket_path)
            appliance.hook(sid, "UserPromptSubmit", http)
        watch.until(lambda d: "working" in rows(d).get("asked", []), "its status redrawn")
    finally:
        code, err = watch.stop()
    assert code == 130 and "interrupted" in err, err
