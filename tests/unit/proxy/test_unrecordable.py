"""The proxy forwards nothing it could not record: after an audit write fails (here a real
file-size limit, in a child process, with the disk itself roomy) it refuses until a line is
written again; the refusal's own line is the probe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from appliance.audit import AUDIT_RESERVE_BYTES, AUDIT_RESERVE_FILES, Room
from proxy.refusals import unrecordable

CHILD = r"""
import json, resource, signal, sys, trustme
from datetime import UTC, datetime
from pathlib import Path
from appliance.audit import AuditLog, Decision
from proxy.certs import CertStore
from proxy.proxy_config import ProxyConfig
from proxy.directory import StoreDirectory
from proxy.policy import audit_record
from proxy.state import ProxyState

class NoCreds:
    def get(self, name): return None

def line(n):
    return audit_record(request_id=f"r{n}", started=datetime.now(UTC), duration_s=0.0,
                        session=None, method="GET", host="h", target=f"/{n}", status=200,
                        bytes_in=0, bytes_out=0, credential=None, decision=Decision.PASSED)

path = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
with AuditLog(path) as audit:
    state = ProxyState(config=ProxyConfig(), creds=NoCreds(), certs=CertStore(trustme.CA()),
                       directory=StoreDirectory(None), audit=audit, forbidden=frozenset())
    seen = [state.unrecordable()]
    state.record(line(1))
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size, hard))
    state.record(line(2))  # fails: the file may not grow
    seen.append(state.unrecordable())
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    seen.append(state.unrecordable())  # still refusing: nothing written since
    state.record(line(3))  # the refusal's line goes in
    seen.append(state.unrecordable())
print(json.dumps([None if r is None else r.free_bytes for r in seen]))
"""


def test_a_failed_audit_write_refuses_until_a_line_is_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                         text=True, check=True)
    before, failed, still, after = json.loads(out.stdout)
    assert before is None and after is None
    assert failed > 0 and still > 0  # refusing, though the disk has room: its free bytes
    assert [json.loads(x)["path"] for x in path.read_text().splitlines()] == ["/1", "/3"]
    assert "cannot append to the audit log" in out.stderr


def test_the_refusal_says_why_and_what_to_do() -> None:
    r = unrecordable(Room(free_bytes=5 * 2**20, free_files=None))
    assert (r.status, r.error_type, r.close) == (503, "AUDIT_UNAVAILABLE", True)
    assert "5 MiB free" in r.body and "forwards nothing it cannot record" in r.body
    assert "Free disk space" in r.body and "files" not in r.body
    # Out of files (inodes) with bytes to spare: said so.
    r = unrecordable(Room(free_bytes=900 * 2**20, free_files=12))
    assert "900 MiB free" in r.body and "room for 12 more files" in r.body, r.body


def test_the_room_is_short_of_bytes_or_of_files() -> None:
    plenty = AUDIT_RESERVE_BYTES + 1
    assert not Room(free_bytes=plenty, free_files=None).full  # no limit on files
    assert not Room(free_bytes=plenty, free_files=AUDIT_RESERVE_FILES).full
    assert Room(free_bytes=plenty, free_files=AUDIT_RESERVE_FILES - 1).full
    assert Room(free_bytes=plenty, free_files=AUDIT_RESERVE_FILES - 1).short_of_files
    assert Room(free_bytes=plenty - 2, free_files=10**9).full
    assert not Room(free_bytes=plenty - 2, free_files=10**9).short_of_files
