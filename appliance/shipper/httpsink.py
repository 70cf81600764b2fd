"""The HTTP sink: POST each batch as newline-delimited JSON to a configured URL.

A 2xx answer acknowledges the batch; anything else (a refused connection, a timeout, any
other status) is :class:`SinkFailed` and the shipper sends the same batch again later. The
receiver de-duplicates by each record's ``id`` (at-least-once). ``X-Clauderon-Batch``
names the byte range, for receivers that log it. The client never uses the environment's
proxy settings: the sink is the only place the lines go.
"""

from __future__ import annotations

import httpx
import trio

from appliance.shipper.lines import Batch
from appliance.shipper.sinks import SinkFailed

CONTENT_TYPE = "application/x-ndjson"


class HttpSink:
    name = "http"

    def __init__(self, client: httpx.AsyncClient, url: str, *, timeout: float,
                 token: str | None = None) -> None:
        self._client = client
        self._url = url
        self._timeout = timeout
        self._headers = {"content-type": CONTENT_TYPE}
        if token:
            self._headers["authorization"] = f"Bearer {token}"

    async def send(self, batch: Batch) -> None:
        headers = {**self._headers, "x-clauderon-batch": batch.key}
        try:
            with trio.fail_after(self._timeout):
                response = await self._client.post(self._url, content=batch.body,
                                                   headers=headers)
        except trio.TooSlowError as exc:
            raise SinkFailed(f"http sink: no answer within {self._timeout:.0f}s") from exc
        except httpx.HTTPError as exc:
            raise SinkFailed(f"http sink: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise SinkFailed(f"http sink answered {response.status_code}")


def make_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, follow_redirects=False)
