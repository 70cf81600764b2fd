"""The shipper in-process on real files: rotation under a live writer, a failing HTTP sink.

The writer is a real process appending through :class:`appliance.audit.AuditLog` and
reopening on SIGHUP, as the proxy does. The HTTP sink is a real HTTP server on loopback.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

from appliance.audit import parse_line
from appliance.config import Settings, load_settings
from appliance.errors import ServiceUnavailable
from appliance.shipper import rotation
from appliance.shipper.archive import ArchiveSink
from appliance.shipper.httpsink import HttpSink, make_client
from appliance.shipper.ship_loop import Shipper

REPO = Path(__file__).resolve().parents[2]


class SignalReopener:
    """The writer is this test's own process: it is told to reopen by its pid."""

    def __init__(self, pid: int) -> None:
        self._pid = pid

    async def reopen(self) -> None:
        try:
            os.kill(self._pid, signal.SIGHUP)
        except OSError as exc:
            raise ServiceUnavailable(f"cannot send SIGHUP to pid {self._pid}: {exc}") from exc

# Appends records rec-<start>..rec-<start+count-1>, reopening the log on SIGHUP between
# writes (as the proxy does), then keeps honouring SIGHUP until its stdin closes. With a
# fourth argument N it writes at most N lines ahead of the rotations it was told of (the
# shipper on a busy machine still rotates while it writes, however slow it is to start).
WRITER = r"""
import signal, sys, time, threading
from pathlib import Path
from appliance.audit import AuditLog, AuditRecord, Decision
path, start, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ahead = int(sys.argv[4]) if len(sys.argv) > 4 else 0
hup = threading.Event()
reopened = 0
signal.signal(signal.SIGHUP, lambda *_: hup.set())
def follow(log):
    global reopened
    if hup.is_set():
        hup.clear()
        log.reopen()
        reopened += 1
with AuditLog(path) as log:
    print("ready", flush=True)
    for i in range(start, start + count):
        follow(log)
        while ahead and (i - start) // ahead > reopened:
            hup.wait(0.05)
            follow(log)
        log.write(AuditRecord(
            ts="2024-03-05T12:00:00.000Z", id=f"rec-{i:06d}", session="s1", method="GET",
            host="api.example.com", path=f"/v1/things/{i}?page=2", status=200,
            bytes_in=10, bytes_out=2000 + i, duration_ms=1.5, credential="github_token",
            decision=Decision.INJECTED))
        if i % 20 == 0:
            time.sleep(0.002)
    print("done", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.01):
        follow(log)
"""


def settings_for(home: Path, config: str) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[shipper]\npoll_seconds = 0.01\n"
                                      "retry_max_seconds = 0.05\n" + config)
    return load_settings({"CLAUDERON_HOME": str(home)})


def archived(settings: Settings) -> list[str]:
    out: list[str] = []
    folder = settings.archive_dir
    if folder.exists():
        for path in sorted(folder.glob("audit-*.jsonl.gz")):
            with gzip.open(path, "rt") as fh:
                out += fh.read().splitlines()
    return out


def ids(lines: list[str]) -> list[str]:
    return [parse_line(line).id for line in lines]


def expected(start: int, count: int) -> list[str]:
    return [f"rec-{i:06d}" for i in range(start, start + count)]


async def run_writer(audit: Path, start: int, count: int, ahead: int = 0) -> trio.Process:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", WRITER, str(audit), str(start), str(count), str(ahead)],
        cwd=REPO,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    await expect(proc, b"ready")
    return proc


async def expect(proc: trio.Process, word: bytes) -> None:
    """Read the writer's next line; it must be ``word``."""
    assert proc.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some(1)
            assert chunk, f"the writer exited before saying {word!r}"
            line += chunk
    assert line == word + b"\n"


async def finish(proc: trio.Process) -> None:
    assert proc.stdin is not None
    await proc.stdin.aclose()
    with trio.fail_after(20):
        assert await proc.wait() == 0


async def wait_until_archived(settings: Settings, count: int) -> list[str]:
    with trio.fail_after(60):
        while len(lines := archived(settings)) < count:
            await trio.sleep(0.02)
    return lines


async def test_rotation_while_a_writer_appends_loses_and_repeats_nothing(
        tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home", "rotate_bytes = 20000\nkeep_rotated = 3\n"
                                               "batch_lines = 37\n")
    total = 3000  # about 250 bytes each: some 35 rotations
    # At most 400 lines (five rotations' worth) ahead of the rotations: seven at least.
    writer = await run_writer(settings.audit_path, 0, total, ahead=400)
    shipper = Shipper(settings, archive=ArchiveSink(settings.archive_dir),
                      reopener=SignalReopener(writer.pid))
    async with trio.open_nursery() as nursery:
        await nursery.start(shipper.serve)
        lines = await wait_until_archived(settings, total)
        with trio.fail_after(20):  # the last rotated file finished and compressed
            while rotation.list_rotated(settings.home, "audit.jsonl"):
                await trio.sleep(0.02)
        await shipper.drain(5)
        await finish(writer)

    assert ids(lines) == expected(0, total)  # every line, once, in order
    assert shipper.shipped == total
    kept = sorted(settings.home.glob("audit.jsonl.*.gz"))
    assert len(kept) == 3  # rotated more than 3 times, pruned to keep_rotated
    tail: list[str] = []
    for path in kept:
        with gzip.open(path, "rt") as fh:
            tail += fh.read().splitlines()
    tail += settings.audit_path.read_text().splitlines()
    assert ids(tail) == expected(total - len(tail), len(tail))
    checkpoint = json.loads((settings.shipper_dir / "checkpoint.json").read_text())
    assert checkpoint["position"]["offset"] == settings.audit_path.stat().st_size
    assert checkpoint["position"]["ino"] == settings.audit_path.stat().st_ino


async def test_a_restart_resumes_at_the_checkpoint(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home", "batch_lines = 10\n")
    writer = await run_writer(settings.audit_path, 0, 50)
    await expect(writer, b"done")
    for rounds in range(2):
        shipper = Shipper(settings, archive=ArchiveSink(settings.archive_dir))
        async with trio.open_nursery() as nursery:
            await nursery.start(shipper.serve)
            await wait_until_archived(settings, 50 * (rounds + 1))
            await shipper.drain(5)
        if rounds == 0:
            more = await run_writer(settings.audit_path, 50, 50)
            await expect(more, b"done")
            await finish(more)
    await finish(writer)
    assert ids(archived(settings)) == expected(0, 100)
    assert shipper.shipped == 50  # the second run sent only what was new


async def test_a_disk_out_of_files_holds_the_shipper_back_and_never_stops_it(
        few_files_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The agents can spend every file (inode) of the appliance's disk. The archive takes
    the lines (its file exists), but the position cannot be saved: the shipper says so and
    tries again, rather than fail at every start until supervisord gives it up; files
    freed, the position is saved and nothing is shipped twice."""
    settings = settings_for(few_files_disk / "home", "batch_lines = 10\n")
    writer = await run_writer(settings.audit_path, 0, 50)
    await expect(writer, b"done")
    shipper = Shipper(settings, archive=ArchiveSink(settings.archive_dir))
    async with trio.open_nursery() as nursery:  # the first run makes the folders and files
        await nursery.start(shipper.serve)
        await wait_until_archived(settings, 50)
        await shipper.drain(5)
    await finish(writer)
    more = await run_writer(settings.audit_path, 50, 50)
    await expect(more, b"done")
    await finish(more)
    junk = few_files_disk / "junk"
    junk.mkdir()
    made = 0
    with pytest.raises(OSError):
        while True:
            (junk / str(made)).touch()
            made += 1
    assert made > 10_000

    shipper = Shipper(settings, archive=ArchiveSink(settings.archive_dir))
    async with trio.open_nursery() as nursery:
        await nursery.start(shipper.serve)
        with trio.fail_after(30):
            while "cannot save the position" not in caplog.text:
                await trio.sleep(0.02)
        # Held back at the batch it could not mark shipped: no further one goes.
        assert 50 < len(archived(settings)) < 100
        for i in range(made):  # the person frees the files
            (junk / str(i)).unlink()
        await wait_until_archived(settings, 100)
        with trio.fail_after(30):
            while json.loads((settings.shipper_dir / "checkpoint.json").read_text())[
                    "position"]["offset"] < settings.audit_path.stat().st_size:
                await trio.sleep(0.02)
        await shipper.drain(5)
    assert ids(archived(settings)) == expected(0, 100)  # each line once
    assert shipper.shipped == 50


@dataclass
class Ingest:
    """A real HTTP receiver on loopback that answers 503 to its first ``fail_first`` POSTs."""

    checkpoint: Path
    fail_first: int
    bodies: list[bytes] = field(default_factory=list)
    failed: list[tuple[str, int | None]] = field(default_factory=list)  # batch key, offset
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lines(self) -> list[str]:
        """Every line of every body it acknowledged."""
        with self.lock:
            return [line.decode() for body in self.bodies for line in body.splitlines()]

    def offset_on_disk(self) -> int | None:
        if not self.checkpoint.exists():
            return None
        position = json.loads(self.checkpoint.read_text())["position"]
        return None if position is None else int(position["offset"])


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[tuple[Ingest, str]]:
    state = Ingest(checkpoint=tmp_path / "home" / "shipper" / "checkpoint.json", fail_first=4)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with state.lock:
                state.headers.append(dict(self.headers))
                fail = len(state.failed) < state.fail_first
                if fail:
                    state.failed.append((self.headers["x-clauderon-batch"],
                                         state.offset_on_disk()))
                else:
                    state.bodies.append(body)
            self.send_response(503 if fail else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/ingest"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def ship(settings: Settings, url: str, count: int, **sink: Any) -> None:
    """A shipper to the archive and ``url`` until ``count`` lines went, then drained."""
    async with make_client() as client:
        shipper = Shipper(settings, archive=ArchiveSink(settings.archive_dir),
                          sinks=[HttpSink(client, url, timeout=5, **sink)])
        async with trio.open_nursery() as nursery:
            await nursery.start(shipper.serve)
            with trio.fail_after(60):
                while shipper.shipped < count:
                    await trio.sleep(0.02)
            await shipper.drain(5)


async def test_http_sink_failing_first_requests_loses_nothing(
        tmp_path: Path, ingest: tuple[Ingest, str]) -> None:
    state, url = ingest
    settings = settings_for(tmp_path / "home", f'batch_lines = 25\nhttp_url = "{url}"\n')
    writer = await run_writer(settings.audit_path, 0, 200)
    await expect(writer, b"done")
    await ship(settings, url, 200, token="t0ken")
    await finish(writer)

    # The first batch was refused four times; the checkpoint stayed at 0 meanwhile.
    assert state.failed == [(state.failed[0][0], None)] * 4
    assert state.failed[0][0].endswith(":0-" + str(len(state.bodies[0])))
    assert ids(state.lines()) == expected(0, 200)  # nothing lost, and here nothing repeated
    assert ids(archived(settings)) == expected(0, 200)  # the archive wrote it exactly once
    assert {h["content-type"] for h in state.headers} == {"application/x-ndjson"}
    assert {h["authorization"] for h in state.headers} == {"Bearer t0ken"}


async def test_sigterm_while_the_sink_fails_exits_0_and_loses_nothing(
        tmp_path: Path, ingest: tuple[Ingest, str]) -> None:
    """The real ``clauderon-shipper`` process: SIGTERM during retries, then a restart."""
    state, url = ingest
    state.fail_first = 10**9
    settings = settings_for(tmp_path / "home", f'batch_lines = 30\nhttp_url = "{url}"\n')
    writer = await run_writer(settings.audit_path, 0, 100)
    await expect(writer, b"done")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDERON_HOME": str(settings.home)}
    with (tmp_path / "shipper.log").open("wb") as log:
        proc = await trio.lowlevel.open_process(
            [str(Path(sys.executable).parent / "clauderon-shipper")], env=env,
            stdout=log, stderr=log)
        with trio.fail_after(30):
            while len(state.failed) < 3:
                await trio.sleep(0.02)
        proc.terminate()
        with trio.fail_after(20):
            assert await proc.wait() == 0
    text = (tmp_path / "shipper.log").read_text()
    assert "draining" in text and "sending again" in text
    # Nothing was acknowledged by every sink, so no position was ever written.
    assert not (settings.shipper_dir / "checkpoint.json").exists()
    assert ids(archived(settings)) == expected(0, 30)  # the archive took the first batch

    state.fail_first = 0  # the receiver is back
    await ship(settings, url, 100)
    await finish(writer)
    assert ids(state.lines()) == expected(0, 100)
    # The unacknowledged first batch was cut from the archive on restart and written again.
    assert ids(archived(settings)) == expected(0, 100)
