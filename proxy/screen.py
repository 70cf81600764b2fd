"""What a forwarded request must pass before any of it goes upstream.

:func:`screen` runs the checks in order, each only while the request is still to be
forwarded: a foreign placeholder in the head (a honeytoken: refused, and an alert), the
session's egress policy and budgets (:func:`gate`, which may hold the request for a person
to answer), what the credential it carries may be used for (:func:`uses.use_refusal`: no
credential minted, nothing published), the pace of that credential (:func:`pace`, which
may hold it until it is on time), a push or GitHub API write the session may make
(:func:`guard_remote`, reading the part of the body that says what it changes, and
asking GitHub whose pull request a write names), and a
foreign placeholder in the body's first bytes (:func:`scan_body`). The body read on the
way is handed back, so it is sent on as it was read. ``exchange.py`` answers a refusal.
"""

from __future__ import annotations

from functools import partial

import h11
import trio

from appliance import egressstore
from appliance.egress import Decision as EgressDecision
from appliance.egress import mode_of
from appliance.methods import READS
from appliance.placeholders import Placeholder
from proxy import creates, gitguard, githost, gqlform, ownrepos, refusals, uses, whose
from proxy.directory import SessionAuth
from proxy.framing import has_body, request_framing
from proxy.heads import Target
from proxy.honeytoken import BODY_SCAN, Leak, leak_in_body, leak_in_head
from proxy.inject import Headers, header_value
from proxy.policy import Forward, Respond, is_model_host
from proxy.relay import ClientGone, Meter, client_send
from proxy.rules import Style
from proxy.sides import HttpSide, hung_up
from proxy.slots import MAX_IN_FLIGHT
from proxy.state import ProxyState
from proxy.upload import read_prefix
from proxy.upstream import UpstreamError
from proxy.whole import exchange

#: How often a client held to its pace is checked for having hung up.
HANG_UP_POLL = 0.5
#: A GitHub API write is read this far to find the branch it names (file contents ride in it).
GITHUB_BODY_LIMIT = 8 * 1024 * 1024
#: A body longer than this is judged in a worker thread, off the proxy's one loop.
JUDGED_ON_LOOP = 64 * 1024


async def screen(state: ProxyState, client: HttpSide, request: h11.Request, target: Target,
                 *, headers: Headers, session: SessionAuth, verdict: Respond | Forward,
                 meter: Meter, over: bool = False
                 ) -> tuple[Respond | Forward, list[h11.Event] | None]:
    """The verdict once every check has run, and the body's first events if read (the
    egress note goes in ``meter``); ``headers`` are the request's, as a list. ``over``: the
    session's audit lines of the day reached their share (``auditshare.py``): refused, but
    a placeholder it sends is still an alert."""
    controls = state.controls
    if isinstance(verdict, Forward) and (free := state.unrecordable()) is not None:
        return refusals.unrecordable(free), None
    # The appliance's own identity has no placeholders to leak, and no egress list or budget.
    suspects = () if session.owner else controls.suspects(
        session.session_id, state.config.rules, target.host)
    # The whole URL: a placeholder in the host name leaves too (the DNS question, the SNI,
    # the Host header the proxy writes), even when no Host header of the agent's names it.
    url = f"{target.scheme}://{target.authority}{target.path}"
    leak: Leak | None = leak_in_head(suspects, url, headers)
    if leak is not None:
        verdict = refusals.honeytoken(session.name, target.host, leak)
        await controls.raise_alert(session, target.host, leak)
    elif over:
        verdict = refusals.audit_share(session.name, state.config.audit_bytes_per_day)
        await controls.note(session, "audit_share_spent",
                            {"bytes_per_day": state.config.audit_bytes_per_day})
    elif isinstance(verdict, Forward) and not session.owner:
        verdict, meter.note = await gate(state, client, target, session, verdict, meter=meter)
        if isinstance(verdict, Forward) and verdict.credential is not None:
            verdict = await spend(state, client, target, session, verdict,
                                  method=request.method.decode("ascii", "replace"),
                                  headers=headers, meter=meter)
    prefix: list[h11.Event] | None = None
    if isinstance(verdict, Forward):
        if client.h11.client_is_waiting_for_100_continue:
            await client_send(client, h11.InformationalResponse(status_code=100, headers=[]),
                              state.config.read_timeout)
        prefix, refused = await guard_remote(state, client, request, target, session=session,
                                              verdict=verdict)
        if refused is not None:
            verdict = refused
    if isinstance(verdict, Forward):
        prefix, leak = await scan_body(state, client, request, target, suspects=suspects,
                                       prefix=prefix)
        if leak is not None:
            verdict = refusals.honeytoken(session.name, target.host, leak)
            await controls.raise_alert(session, target.host, leak)
    return verdict, prefix


async def gate(state: ProxyState, client: HttpSide, target: Target, session: SessionAuth,
               verdict: Forward, *, meter: Meter) -> tuple[Respond | Forward, str | None]:
    """The session's egress policy and budgets (``controls.py``) for a forwarded request;
    the verdict and what to note in the audit line."""
    controls = state.controls
    model = is_model_host(state.config, target.host)
    egress = controls.egress(session, target.host, model_host=model)
    if egress is EgressDecision.PASS:  # the usual case: nothing to note or ask
        return await _budget(state, client, session, verdict, target=target, meter=meter), None
    mode = str(mode_of(session.egress_mode, controls.settings.egress))
    note = None
    if egress is EgressDecision.DENY:
        return refusals.egress_denied(session.name, mode, target.host,
                                      why="denied by its egress lists"), None
    if egress is EgressDecision.ASK:
        answer = await controls.hold(session, target.host, client.stream)
        if answer == "gone":
            raise ClientGone("client hung up while its request was held")
        if answer != "allow":
            refused = {"expired": "nobody allowed it in time",
                       "crowded": f"{egressstore.MAX_OPEN_ASKS} of its requests already wait "
                                  "for a person"}.get(answer, "a person denied it")
            return refusals.egress_denied(session.name, mode, target.host, why=refused), None
        note = "egress ask: allowed by a person"
    elif egress is EgressDecision.LEARN:
        controls.learn(session, target.host)
        note = "egress learn: a new host"
    checked = await _budget(state, client, session, verdict, target=target, meter=meter)
    return checked, note if checked is verdict else None


async def spend(state: ProxyState, client: HttpSide, target: Target, session: SessionAuth,
                verdict: Forward, *, method: str, headers: Headers,
                meter: Meter) -> Respond | Forward:
    """A request with the person's credential in it: refused when it names another method
    or path than its own, or would mint a credential or publish (``uses.py``), else at its
    credential's pace."""
    credential = verdict.credential
    assert credential is not None
    if (why := uses.method_override(headers) or uses.path_override(headers)) is not None:
        return refusals.credential_use(session.name, credential, why)
    if verdict.rule is not None and verdict.rule.style is Style.CODEX_REFRESH \
            and "?" in target.path:
        return refusals.refresh_query(session.name, credential)
    why = uses.use_refusal(credential, target.host, method, target.path,
                           allow_writes=state.config.allow_writes)
    if why is not None:
        await state.controls.alert(
            session, f"credential:{credential}", f"{credential}: {why}; the request was "
            "blocked", event="credential_use",
            detail={"host": target.host, "credential": credential, "method": method})
        return refusals.credential_use(session.name, credential, why)
    return await pace(state, client, target, session, verdict, meter=meter)


async def pace(state: ProxyState, client: HttpSide, target: Target, session: SessionAuth,
               verdict: Forward, *, meter: Meter) -> Respond | Forward:
    """A request with a credential that has a pace (``pace.py``): at once, held until it
    is on time (noted in ``meter`` for the audit line), or refused when that is too far."""
    credential = verdict.credential
    paced = state.config.paces.get(credential) if credential is not None else None
    if credential is None or paced is None:
        return verdict
    admission = state.pacer.take((session.session_id, credential), trio.current_time(),
                                 paced, state.config.pace_hold)
    if admission.refused:
        await state.controls.note(session, "paced", {"credential": credential,
                                                      "host": target.host})
        return refusals.paced(session.name, credential, paced, admission.retry_after)
    if not admission.wait:
        return verdict
    held = f"pace: {credential} held {admission.wait:.1f}s"
    meter.note = f"{meter.note}; {held}" if meter.note else held
    await state.controls.note(session, "paced", {"credential": credential,
                                                      "host": target.host})
    await hold(client, admission.wait, "its request")
    return verdict


async def hold(client: HttpSide, seconds: float, what: str) -> None:
    """Wait ``seconds`` (a pace's hold), ending at once with :class:`ClientGone` when the
    client hangs up meanwhile (checked every :data:`HANG_UP_POLL`)."""
    deadline = trio.current_time() + seconds
    while (left := deadline - trio.current_time()) > 0:
        await trio.sleep(min(left, HANG_UP_POLL))
        if hung_up(client.stream):
            raise ClientGone(f"client hung up while {what} was held to its pace")


async def _budget(state: ProxyState, client: HttpSide, session: SessionAuth,
                  verdict: Forward, *, target: Target, meter: Meter) -> Respond | Forward:
    """A model request refused when the session's budget is spent, or when it may spend
    what the meter cannot read and a budget applies (uncounted, it would pass any). Under
    a budget a metered call first takes one of the session's slots (``controls.py``),
    held in ``meter`` until the exchange ends, so the check sees what the calls before it
    spent."""
    controls = state.controls
    api = verdict.meter or verdict.unmetered
    if api is None or not controls.active:
        return verdict
    if verdict.meter is not None and controls.under_budget(session):
        got = await controls.slots.take(session.session_id, client.stream,
                                       state.config.read_timeout)
        if got == "gone":
            raise ClientGone("client hung up while its model call waited for a slot")
        if got == "busy":
            return refusals.crowded(api, session.name, MAX_IN_FLIGHT)
        meter.release = partial(controls.slots.free, session.session_id)
    why = controls.budget_refusal(session)
    if why is not None:
        await controls.note_budget(session, why)
        return refusals.budget_exceeded(api, session.name, why)
    if verdict.unmetered is not None and controls.under_budget(session):
        return refusals.unmeterable(api, session.name, target.path.split("?", 1)[0])
    if session.budget_exceeded:
        await controls.note_budget(session, None)
    return verdict


async def guard_remote(state: ProxyState, client: HttpSide, request: h11.Request,
                       target: Target, *, session: SessionAuth, verdict: Forward
                       ) -> tuple[list[h11.Event] | None, Respond | None]:
    """A push or a GitHub API write moves only the session's own branch (``gitguard``; the
    appliance's own identity: session branches and their pull requests): the part of the
    body that says which refs is read before anything goes upstream, in one of the
    session's read-ahead slots (``readahead.py``), and only where a rule reads it. A
    session's write to a pull request, once the rules pass it, goes on only when GitHub
    says the pull request is the session's own (``whose.py``). The git host's other writes
    (Git LFS's, a fetch) are judged by their path (``githost.py``)."""
    method = request.method.decode("ascii", "replace")
    # The API host serves no git: a path there that spells a push is a REST write.
    push = gitguard.is_push(method, target.path) and target.host != gitguard.GITHUB_API
    api = target.host == gitguard.GITHUB_API and method not in READS
    if target.host == githost.GIT_HOST and not push:  # Git LFS, a fetch: judged by path
        why = githost.refusal(method, target.path)
        if why is None and not session.owner and githost.reads_body(method, target.path):
            return await _lfs_batch(state, client, request, target, session)
        return None, None if why is None else (
            refusals.owner_refused(target.host, why) if session.owner
            else refusals.remote_refused(session.name, target.host, why))
    if target.host == gitguard.GITHUB_API and (why := gqlform.method_refusal(
            method, target.path, body=has_body(request_framing(request.headers)))):
        return None, refusals.remote_refused(session.name, target.host, why)
    if not (push or api):
        return None, None
    judge = partial(_judge_remote, state, session=session, verdict=verdict, method=method,
                    target=target, push=push)
    if not has_body(request_framing(request.headers)):
        return None, await judge(b"", complete=True)
    if header_value(request.headers, b"content-encoding") not in (None, b"identity"):
        return None, refusals.remote_refused(session.name, target.host,
                                             "an encoded body cannot be checked")
    if not (push or session.owner or gitguard.reads_body(target.path)):
        return None, await judge(b"", complete=False)
    async with state.read_ahead.slot(session.session_id):
        prefix = await read_prefix(client, gitguard.MAX_COMMANDS if push else GITHUB_BODY_LIMIT,
                                   state.config.read_timeout)
        body = b"".join(e.data for e in prefix if isinstance(e, h11.Data))
        complete = not prefix or isinstance(prefix[-1], h11.EndOfMessage)
        return prefix or None, await judge(body, complete=complete)


async def _lfs_batch(state: ProxyState, client: HttpSide, request: h11.Request,
                     target: Target, session: SessionAuth
                     ) -> tuple[list[h11.Event] | None, Respond | None]:
    """A session's Git LFS batch, read ahead whole: an upload goes only to one of its own
    repositories (``githost.batch_refusal``)."""
    prefix: list[h11.Event] = []
    if has_body(request_framing(request.headers)) and header_value(
            request.headers, b"content-encoding") in (None, b"identity"):
        async with state.read_ahead.slot(session.session_id):
            prefix = await read_prefix(client, GITHUB_BODY_LIMIT, state.config.read_timeout)
    whole = not prefix or isinstance(prefix[-1], h11.EndOfMessage)
    body = b"".join(e.data for e in prefix if isinstance(e, h11.Data)) if whole else None
    why = githost.batch_refusal(target.path, body, session.repos, session.name)
    return prefix or None, None if why is None else refusals.remote_refused(
        session.name, target.host, why)


async def _whose(state: ProxyState, target: Target, *, session: SessionAuth,
                 verdict: Forward, method: str, body: bytes | None) -> Respond | None:
    """The refusal of a session's write to a pull request that is not its own, asked of
    GitHub with the credential the write carries (``whose.py``), or None."""
    ask = partial(whose.question, method, target.path, body)
    q = ask() if len(body or b"") <= JUDGED_ON_LOOP else await trio.to_thread.run_sync(ask)
    if q is None:
        return None
    if isinstance(q, str):
        return refusals.remote_refused(session.name, target.host, q)
    # What the session created itself (GitHub's answer to its create, remembered) it changes.
    made = await state.controls.made.which(session.session_id, whose.claims(q))
    q = whose.still_mine(q, made)
    if whose.made(q, made):
        return None
    if (unmade := whose.unmade(q, session.name)) is not None:
        return refusals.remote_refused(session.name, target.host, unmade)
    kept: Headers = [(name, value) for name, value in verdict.headers
                     if name in (b"host", b"authorization", b"user-agent")]
    kept += [(b"accept", b"application/vnd.github+json"), (b"accept-encoding", b"identity")]
    why: str | whose.Question | None = q
    while isinstance(why, whose.Question):  # a comment's pull request is asked about next
        q = why
        headers = [*kept, (b"content-length", str(len(q.body)).encode())]
        if q.body:
            headers.append((b"content-type", b"application/json"))
        try:
            answer, text = await exchange(
                state, target, h11.Request(method=q.method, target=q.path, headers=headers),
                q.body, session=session.session_id, credential=verdict.credential,
                limit=whose.MAX_ANSWER, what="GitHub's answer about a pull request")
            status = answer.status_code
        except UpstreamError:
            status, text = 0, b""
        if named := whose.node(q, status, text):
            made |= await state.controls.made.which(session.session_id, named)
        why = whose.refusal(q, session.name, status, text, made, own=session.repos)
    return None if why is None else refusals.remote_refused(session.name, target.host, why)


async def _judge_remote(state: ProxyState, body: bytes, *, complete: bool,
                        session: SessionAuth, verdict: Forward, method: str, target: Target,
                        push: bool) -> Respond | None:
    """The refusal of a push or GitHub write whose body is ``body`` (all of it when
    ``complete``; else what was read, nothing where no rule reads it), or None. A session's
    write that carries the person's credential and names a pull request is then asked
    about (:func:`_whose`)."""
    checked = body if complete else None
    if not session.owner and (elsewhere := _elsewhere(session, target, push)) is not None:
        return refusals.remote_refused(session.name, target.host, elsewhere)
    if push and session.owner:
        judge = partial(gitguard.owner_push_refusal, body, complete=complete)
    elif push:
        judge = partial(gitguard.push_refusal, session.name, body, complete=complete)
    elif session.owner:
        judge = partial(gitguard.owner_api_refusal, method, target.path, checked)
    else:
        judge = partial(gitguard.api_refusal, session.name, method, target.path, checked)
    # Reading a long body is pure Python that would hold every session's requests: a worker
    # thread takes it, and the loop goes on between its turns.
    why = judge() if len(body) <= JUDGED_ON_LOOP else await trio.to_thread.run_sync(judge)
    if why is None:
        if push or session.owner or verdict.credential is None:
            return None
        return await _whose(state, target, session=session, verdict=verdict, method=method,
                            body=checked)
    if session.owner:
        return refusals.owner_refused(target.host, why)
    return refusals.remote_refused(session.name, target.host, why)


def _elsewhere(session: SessionAuth, target: Target, push: bool) -> str | None:
    """Why a session's push or GitHub API write is refused for the repository it lands in
    (not one of the session's, ``ownrepos.py``), or None."""
    if push and target.host != githost.GIT_HOST:
        return None  # another git host: no GitHub repository of the person's
    if push:
        repo = ownrepos.push_repo(gitguard.checkable_path(target.path) or "")
        if repo is None:
            return ("a push whose repository cannot be read from its path cannot be "
                    "checked; push to https://github.com/OWNER/REPO.git")
    elif (repo := ownrepos.rest_repo(target.path)) is None:
        return None  # not in a repository (GraphQL's nodes are asked about: ``whose.py``)
    return ownrepos.foreign(repo, session.repos, session.name)


def github_create(request: h11.Request, target: Target, verdict: Forward, session: SessionAuth,
            prefix: list[h11.Event] | None) -> creates.Create | None:
    """A session's GitHub create with the person's credential, whose answer says what it
    made; its body is what was read ahead (all of it, or none is known)."""
    if target.host != gitguard.GITHUB_API or session.owner or verdict.credential is None:
        return None
    whole = bool(prefix) and isinstance(prefix[-1], h11.EndOfMessage)  # type: ignore[index]
    body = b"".join(e.data for e in prefix or () if isinstance(e, h11.Data)) if whole else None
    return creates.create(request.method.decode("ascii", "replace"), target.path, body)


async def scan_body(state: ProxyState, client: HttpSide, request: h11.Request,
                    target: Target, *, suspects: tuple[Placeholder, ...],
                    prefix: list[h11.Event] | None = None,
                    ) -> tuple[list[h11.Event] | None, Leak | None]:
    """The body's first bytes, read and searched for foreign placeholders before anything
    goes upstream (not for the model hosts, nor encoded bodies: ``honeytoken.py``). A body
    already read (``prefix``) is searched as it is."""
    # An upgrade is scanned too: a request that names one may still carry a body, which an
    # upstream that does not switch reads as any other.
    if not suspects or is_model_host(state.config, target.host):
        return prefix, None
    if not has_body(request_framing(request.headers)):
        return prefix, None
    if header_value(request.headers, b"content-encoding") not in (None, b"identity"):
        return prefix, None
    if prefix is None:
        prefix = await read_prefix(client, BODY_SCAN, state.config.read_timeout)
    body = b"".join(e.data for e in prefix if isinstance(e, h11.Data))
    return prefix, leak_in_body(suspects, body)
