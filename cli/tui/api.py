"""The TUI's client of the API: async httpx over the Unix socket (Textual runs on asyncio).

Same contract as :class:`cli.client.ApiClient`: a non-2xx answer comes back as the
:class:`ClauderonError` subclass the API raised (matched by ``code``, with its ``field``),
and an API that is down or slow becomes :class:`ServiceUnavailable` within ``timeout``, so
no screen ever waits on the socket without a limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from appliance.errors import NotFound, ServiceUnavailable
from cli.client import decode


class AsyncApi:
    def __init__(self, socket_path: Path, *, timeout: float = 5.0) -> None:
        self.socket_path = socket_path
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
            base_url="http://clauderon", timeout=timeout,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, json: Any = None,
                      params: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except (httpx.TransportError, OSError) as exc:
            raise ServiceUnavailable(
                f"the Clauderon API does not answer on {self.socket_path}"
            ) from exc
        return decode(response)

    async def get(self, path: str, **params: str) -> Any:
        return await self.request("GET", path, params=params or None)

    async def optional(self, path: str) -> Any:
        """``GET`` an endpoint that an older API may not have: None when it answers 404."""
        try:
            return await self.get(path)
        except NotFound:
            return None

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.request("POST", path, json=json if json is not None else {})

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    # --- the calls the screens make ---------------------------------------------------
    async def sessions(self) -> list[dict[str, Any]]:
        body = await self.get("/api/sessions", all="true")
        return list(body["sessions"])

    async def session(self, ref: str) -> dict[str, Any]:
        body = await self.get(f"/api/sessions/{ref}")
        return dict(body["session"])

    async def action(self, ref: str, verb: str) -> dict[str, Any]:
        body = await self.post(f"/api/sessions/{ref}/{verb}")
        return dict(body["session"])
