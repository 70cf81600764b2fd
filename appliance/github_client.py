"""The appliance's GitHub REST client: httpx through the proxy, as the appliance itself.

Every call goes to ``api.github.com`` through the appliance's own proxy on 127.0.0.1 under
its own identity (:func:`owner_proxy`; :mod:`appliance.tokens`), so the proxy injects the
GitHub credential (no token is ever held here), writes the audit line, and applies the
upstream overrides (a GitHub Enterprise gateway, or the tests' fake on loopback) and its
owner rules (``proxy/gitguard.py``). TLS is checked against the proxy's CA. Every call is
bounded (``timeout``); a list is followed through its ``Link: rel="next"`` pages, on the
same host only, at most :data:`MAX_PAGES`. Answers are read by :mod:`appliance.github`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from appliance.config import Settings
from appliance.errors import ClauderonError, Forbidden, RemoteError
from appliance.github import API, RepoSlug, refusal
from appliance.tokens import APPLIANCE_ID, appliance_token

TIMEOUT = 20.0
MAX_PAGES = 10
PER_PAGE = 100
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
           "User-Agent": "clauderon"}


def owner_proxy(settings: Settings, key: bytes) -> str:
    """The proxy URL of the appliance's own identity (kept in memory, never in argv)."""
    return f"http://{APPLIANCE_ID}:{appliance_token(key)}@127.0.0.1:{settings.proxy_port}"


def proxy_ca(settings: Settings) -> Path | None:
    return settings.ca_cert_path if settings.ca_cert_path.exists() else None


class GitHubClient:
    """``async with GitHubClient(proxy=..., ca=...) as gh:`` then the calls below."""

    def __init__(self, *, proxy: str, ca: Path | None, timeout: float = TIMEOUT) -> None:
        verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=str(ca))
                                         if ca is not None else True)
        self._http = httpx.AsyncClient(base_url=API, proxy=proxy, verify=verify,
                                       timeout=timeout, headers=HEADERS, trust_env=False,
                                       follow_redirects=False)

    @classmethod
    def for_settings(cls, settings: Settings, key: bytes) -> GitHubClient:
        return cls(proxy=owner_proxy(settings, key), ca=proxy_ca(settings))

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.aclose()

    # --- transport ----------------------------------------------------------------------
    async def _send(self, method: str, url: str, what: str, *,
                    params: dict[str, str] | None = None,
                    json: Any = None) -> httpx.Response:
        try:
            response = await self._http.request(method, url, params=params, json=json)
        except httpx.ProxyError as exc:
            raise RemoteError(f"the appliance's proxy refused {what} ({exc}); is "
                              "clauderon-proxy running?") from exc
        except httpx.TimeoutException as exc:
            raise RemoteError(f"GitHub did not answer {what} in time") from exc
        except httpx.HTTPError as exc:
            raise RemoteError(f"GitHub cannot be reached for {what} through the appliance's "
                              f"proxy: {exc}") from exc
        blocked = response.headers.get("x-proxy-error-type")
        if blocked and response.status_code >= 400:
            text = response.text.strip()[:500]
            if response.status_code == 403:
                raise Forbidden(f"the proxy refused {what}: {text}")
            raise RemoteError(f"the proxy could not carry {what} ({blocked}): {text}")
        return response

    async def _call(self, method: str, path: str, what: str, *, json: Any = None,
                    ok: tuple[int, ...] = (200,)) -> Any:
        return _answer(await self._send(method, path, what, json=json), what, ok)

    async def _pages(self, path: str, what: str, params: dict[str, str],
                     key: str | None = None) -> list[Any]:
        """Every item of a paged list (``key``: the list inside an object answer)."""
        out: list[Any] = []
        url: str | None = path
        query: dict[str, str] | None = {**params, "per_page": str(PER_PAGE)}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = await self._send("GET", url, what, params=query)
            body = _answer(response, what, (200,))
            items = body.get(key) if key and isinstance(body, dict) else body
            if not isinstance(items, list):
                raise RemoteError(f"GitHub's answer to {what} is not a list")
            out.extend(items)
            url, query = self._next(response), None
        return out

    def _next(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        ours, theirs = urlsplit(API), urlsplit(link)
        return link if (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc) else None

    # --- the calls ------------------------------------------------------------------------
    async def pulls_for(self, slug: RepoSlug, branch: str) -> list[Any]:
        return await self._pages(f"{slug.path}/pulls", f"the pull requests of {branch}",
                                 {"head": f"{slug.owner}:{branch}", "state": "all"})

    async def pull(self, slug: RepoSlug, number: int) -> Any:
        return await self._call("GET", f"{slug.path}/pulls/{number}", f"pull request #{number}")

    async def check_runs(self, slug: RepoSlug, sha: str) -> list[Any]:
        return await self._pages(f"{slug.path}/commits/{sha}/check-runs",
                                 f"the checks of {sha[:7]}", {}, key="check_runs")

    async def reviews(self, slug: RepoSlug, number: int) -> list[Any]:
        return await self._pages(f"{slug.path}/pulls/{number}/reviews",
                                 f"the reviews of #{number}", {})

    async def default_branch(self, slug: RepoSlug) -> str:
        body = await self._call("GET", slug.path, f"the repository {slug}")
        return str(body.get("default_branch") or "main") if isinstance(body, dict) else "main"

    async def open_pull(self, slug: RepoSlug, *, head: str, base: str, title: str, body: str,
                        draft: bool) -> Any:
        return await self._call("POST", f"{slug.path}/pulls", f"open a pull request for {head}",
                                json={"head": head, "base": base, "title": title,
                                      "body": body, "draft": draft}, ok=(201,))

    async def merge(self, slug: RepoSlug, number: int, *, method: str, sha: str | None) -> Any:
        payload: dict[str, str] = {"merge_method": method}
        if sha:
            payload["sha"] = sha  # GitHub refuses (409) when the head moved since we looked
        return await self._call("PUT", f"{slug.path}/pulls/{number}/merge",
                                f"merge pull request #{number}", json=payload)

    async def delete_branch(self, slug: RepoSlug, branch: str) -> None:
        try:
            await self._call("DELETE", f"{slug.path}/git/refs/heads/{branch}",
                             f"delete the branch {branch}", ok=(204,))
        except ClauderonError as exc:
            if "Reference does not exist" not in exc.message:
                raise


def _answer(response: httpx.Response, what: str, ok: tuple[int, ...]) -> Any:
    """The answer's JSON, or the error its status says (GitHub's own words kept)."""
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text.strip()[:300]}
    if response.status_code not in ok:
        raise refusal(response.status_code, body, what)
    return body
