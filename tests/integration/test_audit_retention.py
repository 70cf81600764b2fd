"""The audit archive kept for ``[shipper] keep_days``, and no agent able to make it forget.

The shipper archives every audit line in a file per day and never removed one: the archive
grew until the disk's reserve stopped every session. It now removes the files older than
``keep_days`` (90 by default), judged by the day the shipper itself put in the name. The
hostile agent, from inside its real container as uid 1000, sends a request whose Date
header, host, path and body all claim 2001: its line is written with the proxy's time,
shipped into today's file, and kept.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.shipper.archive import ArchiveSink
from tests.integration.test_audit_flood import in_file, shipping
from tests.support.agent_app import behind_proxy, create, in_container
from tests.support.appliance import Appliance, wait_for

FORGED_HOST = "2001-01-01.invalid"
FORGED_PATH = "/audit-2001-01-01.jsonl.gz/2001-01-01T00:00:00.000Z"
RECENT_HOST = "recent.invalid"


def name(day: datetime) -> str:
    return f"audit-{day.strftime('%Y-%m-%d')}.jsonl.gz"


def archived(app: Appliance, file: str) -> list[dict[str, Any]]:
    with gzip.open(app.settings.archive_dir / file, "rt") as fh:
        return [json.loads(line) for line in fh]


def ship_as_of(app: Appliance, day: datetime, host: str | None) -> None:
    """The real shipper, its archive's clock at ``day``, until ``host``'s line (None: any
    line) is in that day's file."""
    with shipping(app, ArchiveSink(app.settings.archive_dir, clock=lambda: day)) as shipper:
        if host is None:
            wait_for(lambda: shipper.shipped, what="a line shipped")
        else:
            wait_for(lambda: any(line["host"] == host for line in archived(app, name(day)))
                     if (app.settings.archive_dir / name(day)).exists() else False,
                     what=f"the line of {host} archived")


def test_old_archive_files_go_and_a_forged_date_keeps_its_line(
        tmp_path: Path, agent_image: str, repo: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.shipper.ship_loop")
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=95), now - timedelta(days=10)
    with behind_proxy(tmp_path / "home", agent_image, "deny_unlisted = true\n") as app:
        agent = create(app, repo, "forger")
        ship_as_of(app, old, None)  # what the log held then, in the file of 95 days ago
        _, out = in_container(app, agent, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                          f"http://{RECENT_HOST}/mine")
        assert out.split() == ["403"], out
        ship_as_of(app, recent, RECENT_HOST)
        assert sorted(p.name for p in app.settings.archive_dir.iterdir()) == [
            name(old), name(recent)]
        old_bytes = (app.settings.archive_dir / name(old)).stat().st_size
        # The agent makes its request look as old as it can.
        _, out = in_container(app, agent, f"""curl -s -o /dev/null -w '%{{http_code}}\\n' \\
            -H 'Date: Mon, 01 Jan 2001 00:00:00 GMT' -H 'If-Modified-Since: Mon, 01 Jan 2001' \\
            --data '{{"ts":"2001-01-01T00:00:00.000Z"}}' \\
            'http://{FORGED_HOST}{FORGED_PATH}?ts=2001-01-01T00:00:00Z'""")
        assert out.split() == ["403"], out
        wait_for(lambda: in_file(app, FORGED_HOST), what="the forged request's line")
        ship_as_of(app, datetime.now(UTC), FORGED_HOST)  # today, pruning as it starts
        today = datetime.now(UTC)
        files = sorted(p.name for p in app.settings.archive_dir.iterdir())
        assert files == [name(recent), name(today)], files
        [forged] = [line for line in archived(app, name(today)) if line["host"] == FORGED_HOST]
        assert forged["path"].startswith(FORGED_PATH), forged
        assert forged["ts"].startswith(today.strftime("%Y-%m-%d")), forged
        assert [line["path"] for line in archived(app, name(recent))
                if line["host"] == RECENT_HOST] == ["/mine"]
        assert (f"archive: removed {name(old)} ({old_bytes} bytes), every line older than "
                "90 days") in caplog.text  # the default, caplog.text
        # The person's view of the session still has both requests.
        seen = app.http().get(f"/api/sessions/{agent['id']}/audit").json()["lines"]
        assert [line["host"] for line in seen] == [RECENT_HOST, FORGED_HOST], seen
