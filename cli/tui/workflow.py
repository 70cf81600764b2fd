"""The keys of the daily workflow on the selected session: push (opening a pull request),
refresh and merge it, interrupt the agent, and its health with the recovery that fits.

The base of :class:`cli.tui.actions.SessionActions` (which supplies ``api``, ``selected``,
``call``, ``absorb``). Merge and recovery ask first; the question says what it does and,
for a recovery, what it loses (the API's own words). A merge is pinned to the head commit
the question showed: when the agent pushed since, the API refuses it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from textual import work
from textual.screen import Screen

from cli import calls
from cli.client import AsyncApiClient
from cli.tui.dialogs import ConfirmScreen
from cli.tui.model import offered


class WorkflowActions(Screen[None]):
    api: AsyncApiClient

    def selected(self) -> dict[str, Any] | None:
        raise NotImplementedError

    async def call(self, what: str, coro: Awaitable[Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    def absorb(self, session: dict[str, Any] | None) -> None:
        raise NotImplementedError

    @work(group="actions")
    async def action_push(self) -> None:
        if (s := self.selected()) is None:
            return
        if not offered(s, "push"):
            self.notify(f"{s['name']} is {s['phase']}; its branch cannot be pushed now",
                        severity="warning")
            return
        pull = s.get("pull") or {}
        open_pr = pull.get("state") not in ("open", "draft")
        done = await self.call("push", self.api.run(calls.push(s["id"], pr=open_pr)))
        if done:
            self.absorb(done["session"])
            said = (done["session"].get("pull") or {}).get("summary", "")
            self.notify(f"{s['name']}: pushed; {said}")

    @work(group="actions")
    async def action_refresh_pull(self) -> None:
        if (s := self.selected()) and (done := await self.call(
                "refresh", self.api.run(calls.refresh_pull(s["id"])))):
            self.absorb(done)
            said = (done.get("pull") or {}).get("summary", "no pull request")
            self.notify(f"{s['name']}: {said}")

    @work(group="actions")
    async def action_merge(self) -> None:
        if (s := self.selected()) is None:
            return
        pull = s.get("pull") or {}
        if not offered(s, "merge"):
            self.notify(f"{s['name']} has no open pull request (p pushes and opens one)",
                        severity="warning")
            return
        head = pull.get("head_sha") or ""
        question = (f"Squash-merge #{pull.get('number')} ({pull.get('summary')}) at "
                    f"{head[:12]} and delete the remote branch? Your repository keeps it.")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        done = await self.call("merge", self.api.run(calls.merge(
            s["id"], "squash", delete_branch=True, head_sha=head or None)))
        if done:
            self.absorb(done["session"])
            self.notify(f"{s['name']}: merged as {done['commit'][:12]}")

    @work(group="actions")
    async def action_interrupt(self) -> None:
        if (s := self.selected()) and (done := await self.call(
                "interrupt", self.api.run(calls.act(s["id"], "interrupt")))):
            self.absorb(done)
            self.notify(f"{s['name']}: Ctrl-C sent to the agent")

    @work(group="actions")
    async def action_health(self) -> None:
        if (s := self.selected()) is None:
            return
        report = await self.call("health", self.api.run(calls.checkup(s["id"])))
        if not report:
            return
        bad = [f"{c['name']}: {c['detail']}" for c in report["checks"]
               if c["verdict"] in ("fail", "warn")]
        verb = report.get("suggested")
        if not bad or verb is None:
            self.notify(f"{s['name']}: " + ("; ".join(bad) if bad else "healthy"),
                        severity="warning" if bad else "information")
            return
        action = next(a for a in report["actions"] if a["verb"] == verb)
        question = f"{'; '.join(bad)}\n\n{verb}? {action['warning']}"
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        if done := await self.call(verb, self.api.run(calls.act(s["id"], verb))):
            self.absorb(done)
            self.notify(f"{s['name']}: {verb} asked")
