"""The CLI's client of the API: httpx over the Unix socket, errors back into the tree.

Every non-2xx answer is turned back into the :class:`ClauderonError` subclass the API
raised (matched by ``code``), so the CLI prints the API's own operator-grade message and
exits with that class's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from appliance import errors
from appliance.errors import ClauderonError, ServiceUnavailable


def _subclasses(cls: type[ClauderonError]) -> list[type[ClauderonError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


ERROR_BY_CODE: dict[str, type[ClauderonError]] = {
    c.code: c for c in _subclasses(errors.ClauderonError)
}


def decode(response: httpx.Response, accept: frozenset[int] = frozenset()) -> Any:
    """The JSON body of an answer, or the error it carries raised as its own class."""
    if response.status_code == 204:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text.strip() or response.reason_phrase}
    if response.status_code >= 400 and response.status_code not in accept:
        cls = ERROR_BY_CODE.get(str(body.get("code")), ClauderonError)
        raise cls(str(body.get("error", response.reason_phrase)), field=body.get("field"))
    return body


class ApiClient:
    def __init__(self, socket_path: Path, *, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url="http://clauderon", timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, str] | None = None, accept: frozenset[int] = frozenset()
                ) -> Any:
        """The JSON body of a 2xx answer (or of a status in ``accept``); raises otherwise."""
        try:
            response = self._http.request(method, path, json=json, params=params)
        except (httpx.ConnectError, FileNotFoundError) as exc:
            raise ServiceUnavailable(
                f"the Clauderon API is not running (nothing answers on {self.socket_path}); "
                "start it with `clauderon daemon`"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable(
                f"the Clauderon API did not answer {method} {path} in time"
            ) from exc
        return decode(response, accept)

    def get(self, path: str, **params: str) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)
