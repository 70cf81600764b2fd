"""The proxy as the control point: budgets, egress, honeytokens and metering, held live.

Theory of operation. :class:`Controls` keeps a :class:`Snapshot` of what the API writes to
the database -- budgets, egress lists, usage totals -- re-read by :meth:`Controls.run` (a
task of the server's nursery) whenever another process committed or the ledger flushed,
at most every :data:`REFRESH_SECONDS`. The request path only reads the snapshot (plus the
ledger's unflushed counts): :meth:`budget_refusal` and :meth:`egress` are dictionary
look-ups and pure rules (``appliance.budgets``, ``appliance.egress``). So a budget raised
or a host listed from any UI applies within about a second, without a restart.

The session's model health is read from each model call's audit record (:meth:`observe`)
and handed to the ledger, which writes it with the usage counts.

What needs the database on the request path is rare and bounded: a request held in ``ask``
mode (:meth:`hold`, polling its row, for at most the ask timeout, cancelled when the client
hangs up or the proxy stops), and the session's alert when a honeytoken trips or a budget
runs out (:meth:`raise_alert`, :meth:`note_budget`: written once a minute per cause at most,
whatever an agent floods). Hosts learned in ``learn`` mode are written by the background
task. Without a database (``store`` None) every control is open and nothing is metered.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from appliance import audit, controlstore, egressstore, modelhealth, verbs
from appliance.audit import AuditRecord
from appliance.budgets import GLOBAL, Budget, BudgetDefaults, Spent, scopes_refusal
from appliance.config import Settings
from appliance.egress import Decision, EgressDefaults, HostEntry, config_entries, decide, mode_of
from appliance.placeholders import Placeholder, session_placeholders
from appliance.sessions import Phase
from appliance.store import Store
from appliance.usage import DEFAULT_TABLE, PriceTable
from proxy.alertpace import AlertPace
from proxy.directory import SessionAuth
from proxy.honeytoken import Leak, foreign
from proxy.ledger import Ledger
from proxy.made import Made
from proxy.meter import metered_api
from proxy.policy import is_model_host
from proxy.proxy_config import ProxyConfig
from proxy.rules import Rule, match_rule
from proxy.sides import hung_up
from proxy.slots import Slots
from proxy.writes import Writes

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.5
ASK_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlSettings:
    prices: PriceTable = DEFAULT_TABLE
    budgets: BudgetDefaults = field(default_factory=BudgetDefaults)
    egress: EgressDefaults = field(default_factory=EgressDefaults)
    stop_on_honeytoken: bool = False

    @classmethod
    def of(cls, settings: Settings) -> ControlSettings:
        return cls(prices=settings.prices, budgets=settings.budgets, egress=settings.egress,
                   stop_on_honeytoken=settings.honeytoken_stops_session)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    budgets: dict[str, Budget] = field(default_factory=dict)
    spent: dict[str, Spent] = field(default_factory=dict)
    entries: dict[str, tuple[HostEntry, ...]] = field(default_factory=dict)
    day: str = ""
    #: Sessions marked refused for their budget (id -> name), as the store says now.
    refused: dict[str, str] = field(default_factory=dict)


class Controls:
    def __init__(self, store: Store | None = None, key: bytes | None = None,
                 settings: ControlSettings | None = None) -> None:
        self.store = store
        self._key = key
        self.settings = settings or ControlSettings()
        self.ledger = Ledger(store, on_flush=self._dirty)
        self.snapshot = Snapshot()
        self._stale = trio.Event()
        self._reload = False
        self._placeholders: dict[str, tuple[Placeholder, ...]] = {}
        #: (session id, host) -> (the rules it was worked out for, the foreign placeholders).
        self._suspects: dict[tuple[str, str], tuple[tuple[Rule, ...], tuple[Placeholder, ...]]] = {}
        self._learned: set[tuple[str, str]] = set()
        self._learning: Counter[str] = Counter()
        self._to_learn: list[tuple[str, str]] = []
        self._decided: dict[tuple[str, str], Decision] = {}
        self._configured: tuple[EgressDefaults, tuple[HostEntry, ...]] | None = None
        self._due = AlertPace().due
        self._limiter = trio.CapacityLimiter(2)
        self._write = Writes()  # a control event's write, within its own deadline
        self.made = Made(store, self._limiter)
        #: The model calls each session under a budget has running (``slots.py``).
        self.slots = Slots()
        #: Session id -> (its budgets, the model) when an answer's spend was unmeasured.
        self._unmeasured: dict[str, tuple[tuple[Budget, Budget], str]] = {}

    @property
    def active(self) -> bool:
        return self.store is not None

    def _dirty(self) -> None:
        # Our own commits do not move our connection's data_version: say so ourselves.
        self._reload = True
        self._stale.set()

    # --- honeytokens ----------------------------------------------------------------
    def placeholders(self, session_id: str) -> tuple[Placeholder, ...]:
        if self._key is None:
            return ()
        found = self._placeholders.get(session_id)
        if found is None:
            if len(self._placeholders) > 10_000:
                self._placeholders.clear()
            found = self._placeholders[session_id] = session_placeholders(self._key, session_id)
        return found

    def chatgpt(self, session_id: str) -> str:
        """The session's ChatGPT placeholder (empty without the instance key): the one
        thing a request carries that lets the person's ChatGPT login into it."""
        return next((p.value for p in self.placeholders(session_id)
                     if p.family.name == "chatgpt"), "")

    def suspects(self, session_id: str, rules: tuple[Rule, ...], host: str
                 ) -> tuple[Placeholder, ...]:
        """The session's placeholders that have no business at ``host``
        (``honeytoken.foreign``), worked out once per session, host and set of rules."""
        key = (session_id, host)
        found = self._suspects.get(key)
        if found is not None and found[0] is rules:
            return found[1]
        if len(self._suspects) > 10_000:
            self._suspects.clear()
        value = foreign(self.placeholders(session_id), rules, host)
        self._suspects[key] = (rules, value)
        return value

    # --- budgets --------------------------------------------------------------------
    def budget_refusal(self, session: SessionAuth) -> str | None:
        """Why the session may not call its model now (a spent budget), or None."""
        return self._budget_refusal(session.session_id, session.name)

    def unmeasured(self, session: SessionAuth, model: str) -> None:
        """A model answer of the session spent what nothing measures (``Reading.measured``):
        under a budget, the budget counts as spent until a person changes it (or the proxy
        restarts), for it could have been anything."""
        if self.under_budget(session):
            if len(self._unmeasured) > 10_000:
                self._unmeasured.clear()
            self._unmeasured[session.session_id] = (self._budgets(session.session_id), model)

    def under_budget(self, session: SessionAuth) -> bool:
        """Whether a budget (the session's own, or all sessions') applies to the session."""
        own, shared = self._budgets(session.session_id)
        return self.active and not (own.empty and shared.empty)

    def _budgets(self, session_id: str) -> tuple[Budget, Budget]:
        snap = self.snapshot
        return (snap.budgets.get(session_id) or self.settings.budgets.session,
                snap.budgets.get(GLOBAL) or self.settings.budgets.all_sessions)

    def _budget_refusal(self, session_id: str, name: str) -> str | None:
        snap = self.snapshot
        if not self.active:
            return None
        own, shared = self._budgets(session_id)
        if own.empty and shared.empty:
            return None
        unmeasured = self._unmeasured.get(session_id)
        if unmeasured is not None:
            if unmeasured[0] == (own, shared):
                return (f"budget exceeded for session {name}: an answer of {unmeasured[1]} "
                        "could not be metered, so the budget counts as spent")
            del self._unmeasured[session_id]  # a person changed the budget since
        fresh = controlstore.spent_by_scope(self.ledger.unflushed(), self.settings.prices,
                                            controlstore.today())
        return scopes_refusal(((session_id, own, f"session {name}"),
                               (GLOBAL, shared, "all sessions")), snap.spent, fresh,
                              new_day=snap.day != controlstore.today())

    # --- egress ---------------------------------------------------------------------
    def egress(self, session: SessionAuth, host: str, *, model_host: bool) -> Decision:
        mode = mode_of(session.egress_mode, self.settings.egress)
        key = (session.session_id, host)
        if key in self._decided and not model_host:
            return self._decided[key]
        snap = self.snapshot
        # Chained, not built: most decisions (model hosts, open mode) never read the lists.
        shared = itertools.chain(snap.entries.get(GLOBAL, ()), self._config_entries())
        decision = decide(mode, host, model_host=model_host,
                          session=snap.entries.get(session.session_id, ()), shared=shared)
        if decision is Decision.LEARN and key in self._learned:
            return Decision.PASS
        return decision

    def _config_entries(self) -> tuple[HostEntry, ...]:
        """``config.toml``'s egress lists as entries, worked out once per settings."""
        defaults = self.settings.egress
        if self._configured is None or self._configured[0] is not defaults:
            self._configured = (defaults, config_entries(defaults))
        return self._configured[1]

    def learn(self, session: SessionAuth, host: str) -> None:
        key = (session.session_id, host)
        if key not in self._learned and self.active \
                and self._learning[session.session_id] < egressstore.MAX_LEARNED:
            self._learning[session.session_id] += 1  # what is kept in memory stays bounded
            self._learned.add(key)
            self._to_learn.append(key)
            self._stale.set()

    async def hold(self, session: SessionAuth, host: str, client: trio.abc.Stream) -> str:
        """Hold a request while a person decides: ``allow``, ``deny``, ``expired`` (nobody
        answered in time), ``gone`` (the client hung up meanwhile) or ``crowded`` (the
        session has as many requests waiting for a person as it may)."""
        store = self.store
        if store is None:
            return "deny"
        seconds = self.settings.egress.ask_seconds
        ask = await trio.to_thread.run_sync(
            egressstore.open_ask, store, session.session_id, session.name, host, seconds,
            limiter=self._limiter)
        if ask is None:
            return "crowded"
        decision: str | None = None
        gone = False
        with trio.move_on_after(seconds):
            while decision is None and not gone:
                await trio.sleep(ASK_POLL_SECONDS)
                gone = hung_up(client)
                decision = await trio.to_thread.run_sync(
                    egressstore.ask_decision, store, ask.id, limiter=self._limiter)
        if decision is None:
            # Closed as expired only when nobody answered: other requests may share it.
            if not gone:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await trio.to_thread.run_sync(egressstore.expire_ask, store, ask.id)
            return "gone" if gone else "expired"
        if decision in ("allow", "deny"):
            self._decided[(session.session_id, host)] = (
                Decision.PASS if decision == "allow" else Decision.DENY)
        return decision

    # --- model health ---------------------------------------------------------------
    def observe(self, record: AuditRecord, config: ProxyConfig) -> None:
        """Read a finished request's audit record for the session's model health: a model
        call (a metered request to a model host) that worked clears ``model_error``, one
        that failed sets it (``appliance.modelhealth``), written with the next batch."""
        if record.session is None or not self.active or not is_model_host(config, record.host):
            return
        if record.decision == audit.Decision.REJECTED or \
                metered_api(record.method, record.path) is None:  # a 407 asked no model
            return
        rule = match_rule(config.rules, record.host, record.path)
        verdict = modelhealth.judge(host=record.host, status=record.status, error=record.error,
                                    credential=record.credential,
                                    rule_credentials=rule.credentials if rule else ())
        if verdict is not None:
            self.ledger.note_model(record.session, None if verdict.ok else verdict.reason)

    # --- alerts ---------------------------------------------------------------------
    async def raise_alert(self, session: SessionAuth, host: str, leak: Leak) -> None:
        """The session's honeytoken alert (an event, the session's ``alert`` field) and,
        when configured, a stop."""
        await self.alert(session, f"honeytoken:{host}",
                         f"honeytoken: {leak.note} was sent to {host}; the request was blocked",
                         event="honeytoken",
                         detail={"host": host, "family": leak.family, "where": leak.where},
                         stop=self.settings.stop_on_honeytoken)

    async def alert(self, session: SessionAuth, cause: str, text: str, *, event: str,
                    detail: dict[str, Any], stop: bool = False) -> None:
        """Set the session's ``alert`` with an event (once a minute per cause at most) and,
        with ``stop``, stop it."""
        store = self.store
        if store is None or not self._due(session.session_id, cause):
            return

        def write() -> None:
            current = store.get_session(session.session_id)
            if current is None:
                return
            changes: dict[str, Any] = {"alert": text}
            if stop and verbs.refusal(verbs.Verb.STOP, current) is None \
                    and current.phase is not Phase.STOPPED:
                changes.update(verbs.changes_for(verbs.Verb.STOP, current))
            store.update_session(session.session_id, event=event,
                                 detail={**detail, "stopped": "desired" in changes},
                                 **changes)

        await self._write(write)

    async def note(self, session: SessionAuth, event: str, detail: dict[str, Any]) -> None:
        """The session's journal says ``event`` of its requests (``paced``: held back;
        ``audit_share_spent``: refused for the day), once a minute at most for each event
        and detail (the audit lines say it of each request)."""
        store = self.store
        if store is None or not self._due(session.session_id, f"{event}:{sorted(detail.items())}"):
            return
        await self._write(partial(store.append_event, session.session_id, event, detail))

    async def note_budget(self, session: SessionAuth, reason: str | None) -> None:
        """Show (or clear) why the session's model requests are refused."""
        store = self.store
        if store is None or session.budget_exceeded == reason:
            return
        refused = self.snapshot.refused
        if reason is None:
            if refused.pop(session.session_id, None) is None:
                return  # cleared already (by the refresh that saw the budget raised)
        elif not self._due(session.session_id, f"budget:{reason}"):
            return
        else:
            refused[session.session_id] = session.name

        def write() -> None:
            store.update_session(session.session_id, budget_exceeded=reason,
                                 event="budget_exceeded" if reason else "budget_restored")

        await self._write(write)

    # --- the background task --------------------------------------------------------
    def _load(self) -> Snapshot:
        store = self.store
        assert store is not None
        day = controlstore.today()
        rows = controlstore.totals_by_session_model(store)
        entries: dict[str, list[HostEntry]] = {}
        for listed in egressstore.listed(store):
            entries.setdefault(listed.scope, []).append(listed.entry)
        return Snapshot(budgets=controlstore.budgets(store),
                        spent=controlstore.spent_by_scope(rows, self.settings.prices, day),
                        entries={k: tuple(v) for k, v in entries.items()}, day=day,
                        refused=controlstore.refused_sessions(store))

    async def refresh(self) -> None:
        store = self.store
        if store is None:
            return
        learn, self._to_learn = self._to_learn, []
        for sid, host in learn:
            await trio.to_thread.run_sync(egressstore.learn_host, store, sid, host)
        written = self.ledger.batches
        self.snapshot = await trio.to_thread.run_sync(self._load, limiter=self._limiter)
        self.ledger.read_back(written)
        self._decided.clear()
        # A budget raised (or removed) lifts the refusal now, not at the session's next
        # model request: the reason every UI shows clears with the change that lifted it.
        for sid, name in list(self.snapshot.refused.items()):
            if self._budget_refusal(sid, name) is None:
                del self.snapshot.refused[sid]
                await self._write(partial(self._restored, store, sid))

    @staticmethod
    def _restored(store: Store, session_id: str) -> None:
        store.update_session(session_id, budget_exceeded=None, event="budget_restored")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Keep the snapshot fresh and the ledger flushing, until cancelled."""
        store = self.store
        if store is None:
            task_status.started()
            await trio.sleep_forever()
            return
        await self.refresh()
        seen = await trio.to_thread.run_sync(store.data_version)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.ledger.run)
            task_status.started()
            while True:
                with trio.move_on_after(REFRESH_SECONDS):
                    await self._stale.wait()
                self._stale = trio.Event()
                try:
                    now = await trio.to_thread.run_sync(store.data_version)
                    if now != seen or self._reload or self._to_learn \
                            or self.snapshot.day != controlstore.today():
                        seen, self._reload = now, False
                        await self.refresh()
                except Exception:
                    log.exception("cannot re-read budgets and egress lists; keeping the last")
                    await trio.sleep(REFRESH_SECONDS)
