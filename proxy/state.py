"""What a running proxy holds: configuration, credentials, certificates, pool, audit.

One :class:`ProxyState` is built in ``__main__`` (or a test) and handed to
:func:`proxy.server.serve`. Connections read ``config`` and ``creds`` afresh for every
request, so :meth:`ProxyState.reload` (SIGHUP) takes effect on the next request without
dropping a connection. Codex tokens captured from a refresh are kept in an overlay that
wins over the loaded credentials (they are newer than any source) and survives reloads.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import h11
import trio

from appliance.audit import AuditRecord, Decision, Room
from appliance.controlstore import today
from proxy.auditshare import UNPROVEN, Shares
from proxy.certs import CertStore
from proxy.controls import Controls
from proxy.directory import SessionDirectory
from proxy.inject import CredentialLookup, SecretValue
from proxy.lasting import Lasting
from proxy.pace import Pacer
from proxy.policy import IpAddress, audit_record
from proxy.proxy_config import ProxyConfig
from proxy.proxy_metrics import ProxyMetrics
from proxy.readahead import ReadAhead
from proxy.token_refresh import CREDENTIAL_FOR_TOKEN, TokenSink
from proxy.upstream import Pool

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    def write(self, record: AuditRecord) -> int | None: ...

    def reopen(self) -> None: ...

    def room(self) -> Room: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Secret:
    name: str
    value: str = field(repr=False)


class _Overlay:
    def __init__(self, base: CredentialLookup, top: Mapping[str, SecretValue]) -> None:
        self._base = base
        self._top = top

    def get(self, name: str) -> SecretValue | None:
        return self._top.get(name) or self._base.get(name)


#: Reload callback: a new proxy.toml and credential set (raises ConfigError when broken).
Reloader = Callable[[], tuple[ProxyConfig, CredentialLookup]]


class ProxyState:
    def __init__(
        self,
        *,
        config: ProxyConfig,
        creds: CredentialLookup,
        certs: CertStore,
        directory: SessionDirectory,
        audit: AuditSink | None,
        forbidden: frozenset[IpAddress],
        token_sink: TokenSink | None = None,
        reloader: Reloader | None = None,
        controls: Controls | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        self.config = config
        self._loaded = creds
        self._refreshed: dict[str, SecretValue] = {}
        self.certs = certs
        self.directory = directory
        self.audit = audit
        self._audit_failing = False
        self.pool = Pool(config, forbidden)
        self.token_sink = token_sink
        #: Held for a refresh with a refresh token, one per credential: the token endpoint
        #: rotates it, so a second refresh goes with the one the first was answered, never
        #: the spent one; another credential's refresh does not wait (:meth:`refreshing`).
        self._refreshing: dict[str, trio.Lock] = {}
        #: The sessions with a refresh of the person's token under way or waiting: one each,
        #: so that no agent queues many and holds up the others behind them.
        self.refreshers: set[str] = set()
        #: The last successful refresh's answer as the endpoint gave it, and when it came
        #: (:meth:`fresh_refresh`); its access token, while no request with it was answered
        #: 401, and whether it came from a refresh past a rejected one (:meth:`answered`).
        self._answered: tuple[float, h11.Response, bytes] | None = None
        self._kept_access: bytes | None = None
        self._retried = self._bypassing = False
        #: Refreshed tokens not yet written back to the host, and whether a write is under
        #: way (:meth:`write_back`).
        self._unwritten: dict[str, str] = {}
        self._writing = False
        self._reloader = reloader
        #: Budgets, egress, honeytokens and metering (open and unmetered without a store).
        self.controls = controls or Controls()
        #: Requests by host and decision, bytes, latency (published by the ledger).
        self.metrics = metrics or ProxyMetrics(config)
        self.stopping = trio.Event()
        #: How fast each session has spent each credential with a pace (``pace.py``).
        self.pacer = Pacer()
        #: How many bodies each session has read ahead for a check (``readahead.py``).
        self.read_ahead = ReadAhead()
        #: Cancel scopes of connections idling between requests: cancelled on shutdown.
        self.idle_scopes: set[trio.CancelScope] = set()
        #: Exchanges under way: each one's opening line once it outlasts ``long_after``.
        self.lasting = Lasting()
        #: This run's id: the prefix of each exchange's ``stream``, and the ``stream`` of the
        #: line the process writes as it starts (``audit.started``): a view tells an
        #: exchange a killed run left open from one still open by it (``audit.cut_off``).
        self.run = f"{random.getrandbits(48):012x}"
        #: Bytes of each session's audit lines today, and its refusals past its share.
        self.shares = Shares()

    @property
    def creds(self) -> CredentialLookup:
        return _Overlay(self._loaded, self._refreshed)

    def record(self, record: AuditRecord, *, counted: bool = False,
               share: str | None = None) -> None:
        """Write a request's audit line; ``counted``: its session is past its share of the
        day (``auditshare.py``), so it is counted in the minute's summary line instead, but
        for a honeytoken's: the evidence of a leak, written in full up to a second share.
        ``share``: the one it is counted in when no session proves it (:meth:`unproven`)."""
        share = share or record.session or UNPROVEN
        if counted and not (record.decision == Decision.HONEYTOKEN
                            and self.shares.evidence(share, self.config.audit_bytes_per_day,
                                                     today())):
            self.refused_share(share)
            return
        # The audit line is the record of a request; the service log repeats it only when
        # debugging, so the hot path formats no second JSON line.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s %s%s -> %d (%s)", record.id, record.session or "-",
                      record.method, record.host, record.path, record.status,
                      record.decision, extra={"session": record.session})
        self.write(record, share=share)
        self.metrics.observe(record)
        self.controls.observe(record, self.config)

    def write(self, record: AuditRecord, *, share: str | None = None) -> None:
        """The line alone: for the opening line of an exchange that stays open, which its
        end line counts (metrics, controls) once it ends; ``share`` as for :meth:`record`."""
        if self.audit is not None:
            try:
                size = self.audit.write(record)
            except OSError:
                self._audit_failing = True  # forward nothing until a line is written again
                log.exception("cannot append to the audit log")
            else:
                self._audit_failing = False
                if size:  # on the day it is written, not its exchange's start
                    self.shares.spend(share or record.session or UNPROVEN, size, today())

    def unproven(self, address: str) -> str:
        """The share of today's lines no session proves from ``address`` (``auditshare.py``)."""
        return self.shares.unproven(address, today())

    def over_share(self, session: str) -> bool:
        """``session``'s audit lines of today reached ``audit_bytes_per_day``: its
        requests are refused (``auditshare.py``)."""
        return self.shares.over(session, self.config.audit_bytes_per_day, today())

    def refused_share(self, session: str) -> None:
        """Count a refusal past ``session``'s share: no line of its own, one a minute."""
        self.summarize(self.shares.refuse(session, _minute()))

    def summarize(self, due: list[tuple[str, str, int]]) -> None:
        """One line for each session's refusals past its share in a minute."""
        for session, minute, count in due:
            self.write(audit_record(
                request_id=f"{self.run}.share.{minute}.{session}", started=datetime.now(UTC),
                duration_s=0.0, session=session, method="-", host="-", target="-", status=429,
                bytes_in=0, bytes_out=0, credential=None, decision=Decision.BLOCKED,
                error="AUDIT_SHARE", note=f"{count} requests refused in {minute}: the "
                f"session's audit lines of the day reached {self.config.audit_bytes_per_day}"
                " bytes"))

    async def summaries(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                        ) -> None:
        """Each minute's summaries once the minute is over (the last ones at shutdown)."""
        task_status.started()
        try:
            while True:
                await trio.sleep(60 - datetime.now(UTC).second + 0.5)
                self.summarize(self.shares.due(_minute()))
        finally:
            self.summarize(self.shares.due(None))

    def unrecordable(self) -> Room | None:
        """None when the audit log can take the next request's line; else the room on its
        disk (below the reserve, or its last write failed): forward nothing then. The
        refusal's own line is the probe that ends a failing spell."""
        if self.audit is None:
            return None
        try:
            room = self.audit.room()
        except OSError:
            return Room(free_bytes=0, free_files=None)
        return room if self._audit_failing or room.full else None

    def refreshing(self, credential: str) -> trio.Lock:
        """The lock a refresh with ``credential`` holds while it is under way."""
        return self._refreshing.setdefault(credential, trio.Lock())

    def refreshes_waiting(self) -> int:
        """How many refreshes wait for another of their credential to end."""
        return sum(lock.statistics().tasks_waiting for lock in self._refreshing.values())

    def keep_refreshed(self, tokens: Mapping[str, str],
                       answer: tuple[h11.Response, bytes] | None = None) -> None:
        """A refresh's tokens: injected from now on, written back by :meth:`write_back`;
        the ``answer`` they came in answers the next refreshes for a while."""
        if answer is not None:
            self._retried, self._bypassing = self._bypassing, False
            self._answered = (trio.current_time(), *answer)
            self._kept_access = tokens.get("access_token", "").encode() or None
        for key, value in tokens.items():
            name = CREDENTIAL_FOR_TOKEN.get(key)
            if name:
                self._refreshed[name] = _Secret(name=name, value=value)
        if self.token_sink is not None:
            self._unwritten.update(tokens)

    def fresh_refresh(self, within: float) -> tuple[h11.Response, bytes] | None:
        """The last successful refresh's answer, when it came less than ``within`` seconds
        ago (``refresh_relay.py``: the next refresh is answered so)."""
        if self._answered is None or trio.current_time() - self._answered[0] >= within:
            self._bypassing = False
            return None
        self._bypassing = self._kept_access is None and not self._retried
        return None if self._bypassing else self._answered[1:]

    def answered(self, credential: str | None, status: int, secrets: tuple[bytes, ...]) -> None:
        """A request with ``credential`` (as ``secrets``) was answered ``status``: a 401 to the
        last refresh's access token says the endpoint revoked it, and the next refresh goes to
        the endpoint rather than answer it again (once: a refresh past a rejected one answers
        the next ones even when its token is rejected too, so that 401s loop no refreshes)."""
        if status == 401 and credential == CREDENTIAL_FOR_TOKEN["access_token"] \
                and self._kept_access is not None and self._kept_access in secrets:
            self._kept_access = None

    async def write_back(self) -> None:
        """The tokens kept since the last write, written to the host (``token_sink``), with
        no refresh's turn held: a slow disk holds up no other refresh. One write at a time,
        the newest tokens last; a refresh that finds one under way leaves its own to it."""
        if self._writing or not self._unwritten or self.token_sink is None:
            return
        self._writing, sink = True, self.token_sink
        try:
            with trio.CancelScope(shield=True):  # a spent refresh token must not stay on disk
                while self._unwritten:
                    tokens, self._unwritten = self._unwritten, {}
                    try:
                        await trio.to_thread.run_sync(sink, tokens)
                    except Exception:
                        log.exception("cannot write refreshed Codex tokens back")
        finally:
            self._writing = False

    async def reload(self) -> None:
        """Re-read proxy.toml and credentials; the old ones stay if the new ones are broken.

        The reloader runs on a worker thread (it may call ``op``); connections keep going
        and pick the new values up on their next request.
        """
        # Reopen the audit log first: the shipper's rotation relies on it even when the new
        # configuration turns out to be broken.
        if self.audit is not None:
            self.audit.reopen()
        if self._reloader is not None:
            config, creds = await trio.to_thread.run_sync(self._reloader)
            self.config = config
            self._loaded = creds
            self.pool.reconfigure(config)
            self.metrics.reconfigured(config)
        log.info("reloaded configuration and credentials")

    def stop(self) -> None:
        self.stopping.set()
        for scope in list(self.idle_scopes):
            scope.cancel()


def _minute() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
