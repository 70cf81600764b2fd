"""Every call the CLI and the TUI make to the API, and what its answer means (pure).

A :class:`Call` is a request (method, path, query, JSON body) plus how to read its answer;
the module's functions build one per API operation, so each path is written once. The two
faces of the client (:mod:`cli.client`: sync for the CLI, async for the TUI) only send a
call and hand the response to :func:`finish`, which is where an answer becomes a value or
an error: a non-2xx answer comes back as the :class:`ClauderonError` subclass the API raised
(matched by ``code``, with its ``field``), so the CLI prints the API's own message and exits
with that class's code, and the TUI shows the message beside the field it names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from appliance import errors
from appliance.errors import ClauderonError
from cli.table import inert_json

T = TypeVar("T")
Json = dict[str, Any]


def known_errors() -> dict[str, type[ClauderonError]]:
    """The classes of the one error tree (:mod:`appliance.errors`, what the API's answers
    carry) by code. A service's own subclasses (the proxy's, the shipper's) never reach an
    answer, and whether one is loaded must not change what an answer means."""
    return {c.code: c for c in vars(errors).values()
            if isinstance(c, type) and issubclass(c, ClauderonError)
            and c.__module__ == errors.__name__}


def _body(body: Any) -> Any:
    return body


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Generic[T]):
    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    #: Error statuses whose body is still the answer (``/api/health`` says 503 with details).
    accept: frozenset[int] = frozenset()
    read: Callable[[Any], T] = _body

    def describe(self) -> str:
        return f"{self.method} {self.path}"


def error_of(response: httpx.Response, body: Any) -> ClauderonError:
    """The API's error as its own class (an unknown code: the root class)."""
    fields = body if isinstance(body, dict) else {}
    message = str(fields.get("error") or f"{response.status_code} {response.reason_phrase}")
    cls = known_errors().get(str(fields.get("code")), ClauderonError)
    where = fields.get("field")
    return cls(message, field=where if isinstance(where, str) else None)


def body_of(response: httpx.Response) -> Any:
    """The decoded body; text that is not JSON is kept as the error it must be."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"error": response.text.strip()[:500] or response.reason_phrase}


def finish(call: Call[T], response: httpx.Response, *, inert: bool = False) -> T:
    """What ``call`` answered: its value, or the API's error raised; with ``inert``, every
    string in the answer made inert first (:func:`cli.table.inert_json`)."""
    body = inert_json(body_of(response)) if inert else body_of(response)
    if response.status_code >= 400 and response.status_code not in call.accept:
        raise error_of(response, body)
    return call.read(body)


def _at(ref: str, below: str = "") -> str:
    """The path of session ``ref`` (quoted: a name never reads as more path), and ``below``."""
    return f"/api/sessions/{quote(ref, safe='')}{below}"


def _session(body: Any) -> Json:
    return dict(body["session"])


def _list(key: str) -> Callable[[Any], list[Json]]:
    return lambda body: [dict(x) for x in body[key]]


# --- plain calls, for what has no name below ---------------------------------------------
def get(path: str, params: Mapping[str, str] | None = None) -> Call[Any]:
    return Call(method="GET", path=path, params=dict(params or {}))


def post(path: str, json: Any = None) -> Call[Any]:
    return Call(method="POST", path=path, json={} if json is None else json)


def put(path: str, json: Any = None) -> Call[Any]:
    return Call(method="PUT", path=path, json=json if json is not None else {})


def delete(path: str) -> Call[Any]:
    return Call(method="DELETE", path=path)


# --- sessions -----------------------------------------------------------------------------
def sessions(filter: str | None = None, *, everything: bool = False) -> Call[list[Json]]:
    """The list: what ``filter`` (active, waiting, failed, completed, archived) shows; with
    ``everything``, every session; neither: all but the archived."""
    params = {"filter": filter} if filter else {"all": "true"} if everything else {}
    return Call(method="GET", path="/api/sessions", params=params, read=_list("sessions"))


def session(ref: str) -> Call[Json]:
    return Call(method="GET", path=_at(ref), read=_session)


def parse_repo_arg(raw: str) -> dict[str, str]:
    """A further ``--repo PATH[:NAME][@BASE]``: the mount name after the last ``:``, the
    base after the last ``@`` (a path holding either is given through the API's JSON)."""
    rest, at, base = raw.rpartition("@")
    if not at:
        rest, base = raw, ""
    path, colon, name = rest.rpartition(":")
    if not colon:
        path, name = rest, ""
    out = {"path": str(Path(path).expanduser().absolute())}
    if name:
        out["name"] = name
    if base:
        out["base"] = base
    return out


def create_body(repo_path: str, more: Sequence[str], **fields: Any) -> Json:
    """What a create asks for: the primary repository, each further one as ``--repo`` gives
    it (:func:`parse_repo_arg`), and the ``fields`` set (None: left to the API's default)."""
    body: Json = {"repo_path": repo_path, **{k: v for k, v in fields.items() if v is not None}}
    if more:
        body["repos"] = [parse_repo_arg(raw) for raw in more]
    return body


def create(body: Json) -> Call[Json]:
    return Call(method="POST", path="/api/sessions", json=body, read=_session)


#: What brings a session back to compute before an attach, in the order tried.
REVIVE = ("start", "unarchive")


def act(ref: str, verb: str) -> Call[Json]:
    """``archive``, ``unarchive``, ``start``, ``stop``, ``retry``, ``interrupt``, ``retitle``,
    ``restart-agent``, ``recreate``, ``recreate-fresh`` or ``update-image``: the session after."""
    return Call(method="POST", path=_at(ref, f"/{verb}"), json={}, read=_session)


def edit(ref: str, changes: Json) -> Call[Json]:
    """Change the title or description (data only)."""
    return Call(method="PATCH", path=_at(ref), json=changes, read=_session)


def remove(ref: str) -> Call[Json]:
    return Call(method="DELETE", path=_at(ref), read=_session)


def access_mode(ref: str, mode: str) -> Call[Json]:
    return Call(method="POST", path=_at(ref, "/access-mode"),
                json={"access_mode": mode}, read=_session)


def history(ref: str) -> Call[list[Json]]:
    """The session's recorded events (progress, failures, drift), oldest first."""
    return Call(method="GET", path=_at(ref, "/events"), read=_list("events"))


def attach(ref: str) -> Call[Json]:
    return Call(method="GET", path=_at(ref, "/attach"))


def diff(ref: str, repo: str | None = None) -> Call[Json]:
    """Each repository's changes (``repo``: only that one; ``.`` is the primary)."""
    return Call(method="GET", path=_at(ref, "/diff"), params={"repo": repo} if repo else {})


def audit(ref: str, limit: int) -> Call[list[Json]]:
    return Call(method="GET", path=_at(ref, "/audit"),
                params={"limit": str(limit)}, read=_list("lines"))


# --- the branch on its remote, health and recovery, the agent's terminal ----------------------
def push(ref: str, *, force: bool = False, pr: bool = False, draft: bool = False,
         commit: str | None = None) -> Call[Json]:
    """Push the session's branch (with the host's credential); ``pr``: open a pull request;
    ``commit``: only if the branch is at it (the one the person looked at; else a 409)."""
    body: Json = {"force": force, "pr": pr, "draft": draft}
    if commit is not None:
        body["commit"] = commit
    return Call(method="POST", path=_at(ref, "/push"), json=body)


def refresh_pull(ref: str) -> Call[Json]:
    return Call(method="POST", path=_at(ref, "/pull/refresh"), json={}, read=_session)


def merge(ref: str, method: str, *, delete_branch: bool = False,
          head_sha: str | None = None) -> Call[Json]:
    body: Json = {"method": method, "delete_branch": delete_branch}
    if head_sha:
        body["head_sha"] = head_sha
    return Call(method="POST", path=_at(ref, "/merge"), json=body)


def send(ref: str, text: str) -> Call[Any]:
    """Type ``text`` into the agent's terminal and press Enter."""
    return Call(method="POST", path=_at(ref, "/message"), json={"text": text})


def checkup(ref: str) -> Call[Json]:
    return Call(method="GET", path=_at(ref, "/health"))


def timeline(ref: str, *, before: str | None = None, limit: int = 50) -> Call[Json]:
    """A page of the session's timeline (oldest first); ``before``: a page's cursor."""
    params = {"limit": str(limit)} | ({"before": before} if before else {})
    return Call(method="GET", path=_at(ref, "/timeline"), params=params)


# --- the appliance --------------------------------------------------------------------------
def recent_repos() -> Call[list[Json]]:
    return Call(method="GET", path="/api/recent-repos", read=_list("repos"))


def reconcile() -> Call[Json]:
    return Call(method="GET", path="/api/reconcile")


def credentials() -> Call[Json]:
    """The credentials the proxy loaded (names, sources, masked values) and which agents
    can work with them."""
    return Call(method="GET", path="/api/credentials")


def health() -> Call[Json]:
    # 503 means "degraded" here: the body still describes every part.
    return Call(method="GET", path="/api/health", accept=frozenset({503}))


# --- sign-in: links, devices, tokens --------------------------------------------------------
def sign_in_link() -> Call[Json]:
    return Call(method="POST", path="/api/auth/links", json={})


def devices() -> Call[Json]:
    return Call(method="GET", path="/api/auth/devices")


def revoke(device: str) -> Call[Json]:
    return Call(method="DELETE", path=f"/api/auth/devices/{quote(device, safe='')}")


def make_token(body: Json) -> Call[Json]:
    return Call(method="POST", path="/api/auth/tokens", json=body)


def events_path(after: int | None) -> str:
    """Where ``/ws/events`` resumes: after event ``after``, or from now."""
    return "/ws/events" + (f"?after={after}" if after is not None else "")
