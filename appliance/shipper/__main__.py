"""``clauderon-shipper``: the audit shipper service, run by supervisord.

Builds the sinks from settings (the archive always; the HTTP sink when
``[shipper] http_url`` is set, with ``CLAUDERON_SHIPPER_TOKEN`` as a bearer token) and the
reopener (supervisord's XML-RPC when run under it; without one, audit.jsonl is not
rotated), then serves until SIGTERM and drains within the grace period.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from functools import partial

import trio

from appliance.config import Settings, load_settings
from appliance.service import configure_logging, ends_clearly, run_until_signalled
from appliance.shipper.archive import ArchiveSink
from appliance.shipper.httpsink import HttpSink, make_client
from appliance.shipper.reopen import Reopener, SupervisorReopener
from appliance.shipper.ship_loop import Shipper
from appliance.shipper.sinks import Sink
from appliance.store import Store

log = logging.getLogger("clauderon.shipper")

GRACE = 10.0


async def run(settings: Settings, env: Mapping[str, str]) -> None:
    async with AsyncExitStack() as stack:
        sinks: list[Sink] = []
        if settings.shipper_http_url:
            client = await stack.enter_async_context(make_client())
            sinks.append(HttpSink(client, settings.shipper_http_url,
                                  timeout=settings.shipper_http_timeout_seconds,
                                  token=env.get("CLAUDERON_SHIPPER_TOKEN")))
        reopener: Reopener | None = None
        if env.get("SUPERVISOR_SERVER_URL"):
            reopener = SupervisorReopener(env["SUPERVISOR_SERVER_URL"],
                                          settings.shipper_writer_program)
        else:
            log.info("not under supervisord: audit.jsonl will not be rotated")
        shipper = Shipper(settings, archive=ArchiveSink(settings.archive_dir), sinks=sinks,
                          reopener=reopener)
        # The shipper's only use of the database: its metrics, for the API's /metrics.
        store = Store.open(settings.db_path)
        stack.callback(store.close)

        async def serve(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                        ) -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(shipper.metrics.publisher.run, store)
                await nursery.start(shipper.serve)
                task_status.started()

        async def drain(grace: float) -> None:
            await shipper.drain(grace)
            await trio.to_thread.run_sync(shipper.metrics.publisher.publish, store)

        await run_until_signalled(serve, drain=drain, grace=GRACE, name="shipper")


def main() -> None:
    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per batch
    with ends_clearly(log):
        settings = load_settings()
        settings.ensure_layout()
        trio.run(partial(run, settings, dict(os.environ)))


if __name__ == "__main__":
    main()
