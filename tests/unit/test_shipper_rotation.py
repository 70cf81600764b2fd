"""Rotated-file names and pruning, archive day names, and archive recovery on real files."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.errors import ConfigError
from appliance.shipper import rotation
from appliance.shipper.archive import ArchiveSink, day_name
from appliance.shipper.checkpoint import ArchiveMark, FileId
from appliance.shipper.lines import Batch

BASE = "audit.jsonl"
T0 = datetime(2024, 3, 5, 23, 59, 58, 123456, tzinfo=UTC)


def test_rotated_names_sort_by_time_and_are_recognised() -> None:
    first = rotation.rotated_name(BASE, T0)
    later = rotation.rotated_name(BASE, T0 + timedelta(microseconds=1))
    assert first == "audit.jsonl.20240305T235958123456Z"
    assert first < later
    assert rotation.is_rotated(first, BASE)
    assert not rotation.is_rotated(first + ".gz", BASE)
    assert rotation.is_compressed(first + ".gz", BASE)
    for other in ("audit.jsonl", "audit.jsonl.tmp", "audit.jsonl.1", "proxy.log.1",
                  first + ".gz.part"):
        assert not rotation.is_rotated(other, BASE)
        assert not rotation.is_compressed(other, BASE)


def test_prune_keeps_the_newest() -> None:
    names = [rotation.rotated_name(BASE, T0 + timedelta(seconds=i)) + ".gz" for i in range(5)]
    names += ["audit.jsonl", rotation.rotated_name(BASE, T0)]
    assert rotation.to_prune(names, BASE, keep=2) == sorted(names[:3])
    assert rotation.to_prune(names, BASE, keep=10) == []
    assert rotation.to_prune(names, BASE, keep=0) == sorted(names[:5])


def test_compress_and_tidy(tmp_path: Path) -> None:
    names = [rotation.rotated_name(BASE, T0 + timedelta(seconds=i)) for i in range(3)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(b"line %d\n" % i)
        rotation.compress(tmp_path / name)
    (tmp_path / (names[0] + ".gz.part")).write_bytes(b"half")
    assert rotation.tidy(tmp_path, BASE, keep=2) == [names[0] + ".gz.part", names[0] + ".gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [n + ".gz" for n in names[1:]]
    assert gzip.decompress((tmp_path / (names[2] + ".gz")).read_bytes()) == b"line 2\n"
    assert (tmp_path / (names[2] + ".gz")).stat().st_mode & 0o777 == 0o600


def test_archive_day_is_utc_and_never_goes_back() -> None:
    late_evening_west = datetime(2024, 3, 5, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert day_name(late_evening_west, None) == "audit-2024-03-06.jsonl.gz"
    last = ArchiveMark(name="audit-2024-03-07.jsonl.gz", size=10)
    assert day_name(T0, last) == last.name  # the clock stepped back: keep the later file


def batch(text: bytes) -> Batch:
    return Batch(file=FileId(dev=1, ino=1), start=0, end=len(text), lines=(text,))


async def test_archive_appends_members_and_recovery_drops_unacknowledged(
        tmp_path: Path) -> None:
    clock = [T0]
    sink = ArchiveSink(tmp_path / "archive", clock=lambda: clock[0])
    sink.recover(None)
    await sink.send(batch(b"one\n"))
    await sink.send(batch(b"two\n"))
    acked = sink.mark()
    assert acked is not None and acked.name == "audit-2024-03-05.jsonl.gz"
    await sink.send(batch(b"three\n"))  # written, never checkpointed
    clock[0] = T0 + timedelta(days=1)
    await sink.send(batch(b"four\n"))  # a new day's file, never checkpointed
    path = tmp_path / "archive" / acked.name
    with path.open("ab") as fh:
        fh.write(b"\x1f\x8b torn member")
    assert len(list((tmp_path / "archive").iterdir())) == 2

    again = ArchiveSink(tmp_path / "archive", clock=lambda: clock[0])
    again.recover(acked)
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [acked.name]
    assert gzip.decompress(path.read_bytes()) == b"one\ntwo\n"
    assert (tmp_path / "archive").stat().st_mode & 0o777 == 0o700


def test_shipper_settings_from_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[shipper]\nrotate_bytes = 1024\nkeep_rotated = 2\n"
        'http_url = "http://127.0.0.1:9/ingest"\nwriter_program = "proxy"\n')
    s = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    assert (s.shipper_rotate_bytes, s.shipper_keep_rotated) == (1024, 2)
    assert s.shipper_http_url == "http://127.0.0.1:9/ingest"
    assert s.shipper_dir == tmp_path / "shipper" and s.archive_dir == tmp_path / "archive"
    defaults = load_settings({"CLAUDERON_HOME": str(tmp_path / "other")})
    assert defaults.shipper_rotate_bytes == 50 * 1024 * 1024
    assert defaults.shipper_http_url is None


def test_unknown_shipper_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[shipper]\nrotate_byte = 1\n")
    with pytest.raises(ConfigError, match="rotate_byte"):
        load_settings({"CLAUDERON_HOME": str(tmp_path)})


COMPRESS_ON_A_FULL_DISK = r"""
import json, logging, os, resource, signal, sys
from pathlib import Path
from appliance.shipper.ship_loop import _compress
logging.basicConfig(level=logging.WARNING)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
path = Path(sys.argv[1])
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
refused = _compress(path)
left = sorted(os.listdir(path.parent))
whole = path.read_bytes() == Path(sys.argv[2]).read_bytes()
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
print(json.dumps([str(refused), left, whole, str(_compress(path))]))
"""


def test_a_compress_the_disk_refuses_leaves_the_file_whole(tmp_path: Path) -> None:
    """The disk refuses the compressed copy (a real file-size limit, in a child process):
    the shipped file stays whole, no half copy is left, the shipper goes on and says so;
    with room, the next try compresses it."""
    name = rotation.rotated_name(BASE, T0)
    body = os.urandom(1024 * 1024)  # random: its gzip is as large
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / name).write_bytes(body)
    (tmp_path / "copy").write_bytes(body)
    out = subprocess.run([sys.executable, "-c", COMPRESS_ON_A_FULL_DISK, str(folder / name),
                          str(tmp_path / "copy")], capture_output=True, text=True, check=True)
    refused, left, whole, done = json.loads(out.stdout)
    assert refused == "None" and left == [name] and whole, out.stdout  # no half copy
    assert f"cannot compress {name}" in out.stderr, out.stderr
    assert done == str(folder / (name + ".gz")), out.stdout
    assert [p.name for p in folder.iterdir()] == [name + ".gz"]
    assert gzip.decompress((folder / (name + ".gz")).read_bytes()) == body
