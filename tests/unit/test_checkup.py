"""A session's health judged from what was found (pure): each part, and the fix suggested."""

from __future__ import annotations

from datetime import UTC, datetime

import appliance.backends  # noqa: F401  (the import order the services use)
from appliance.backends.base import RunState
from appliance.checkup import Facts, Probe, Verdict, parse_probe, report
from appliance.sessions import Phase, Session, SessionId
from appliance.verbs import Verb

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def session(phase: Phase = Phase.RUNNING) -> Session:
    return Session(id=SessionId("s1"), name="doc", repo_path="/r", worktree_path="/w",
                   branch="clauderon/doc", base_ref="main", image="img", phase=phase,
                   backend_id="c1", created_at=NOW, updated_at=NOW)


def facts(**changes: object) -> Facts:
    base: dict[str, object] = dict(
        workload=RunState.RUNNING, workload_image="img", workspace=True, tip="a" * 40,
        agents=True, probe=Probe(terminal="claude.exe", proxy=407, hooks=405),
        model={"method": "POST", "path": "/v1/messages", "status": 200, "host": "h"})
    base.update(changes)
    return Facts(**base)  # type: ignore[arg-type]


def verdicts(f: Facts, phase: Phase = Phase.RUNNING) -> dict[str, Verdict]:
    return {c.name: c.verdict for c in report(session(phase), f).checks}


def test_the_probe_is_read_or_refused() -> None:
    assert parse_probe("t:claude.exe \n407\n405\n") == Probe(terminal="claude.exe",
                                                            proxy=407, hooks=405)
    assert parse_probe("t:\n000\n000\n") == Probe(terminal="", proxy=0, hooks=0)
    assert parse_probe("bash\n407\n405\n") is None  # not ours: no marker
    assert parse_probe("t:x\nnope\n1\n") is None


def test_a_healthy_session() -> None:
    r = report(session(), facts())
    assert r.ok and r.suggested is None
    assert set(verdicts(facts()).values()) == {Verdict.OK}


def test_each_finding_suggests_its_fix() -> None:
    exited = report(session(), facts(probe=Probe(terminal="sleep", proxy=407, hooks=405)))
    assert not exited.ok and exited.suggested is Verb.RESTART_AGENT
    cut_off = facts(probe=Probe(terminal="node", proxy=0, hooks=405))
    assert verdicts(cut_off)["proxy"] is Verdict.FAIL
    assert report(session(), cut_off).suggested is Verb.RECREATE
    gone = report(session(), facts(workspace=False))
    assert gone.suggested is Verb.RECREATE_FRESH  # the strongest fix wins
    broken = report(session(), facts(repository=False, tip=None))
    assert verdicts(facts(repository=False, tip=None))["workspace"] is Verdict.WARN
    assert broken.suggested is Verb.RECREATE  # mends it; fresh would lose the agent's files
    dead = report(session(), facts(workload=None, probe=None))
    assert dead.suggested is Verb.RECREATE
    failed_model = verdicts(facts(model={"method": "POST", "path": "/v1/messages",
                                         "status": 529, "host": "h", "error": "overloaded"}))
    assert failed_model["model"] is Verdict.WARN


def test_the_proxys_judgement_of_the_model_calls_is_the_model_check() -> None:
    from dataclasses import replace
    failing = replace(session(), model_error="no credential for anthropic")
    [model] = [c for c in report(failing, facts()).checks if c.name == "model"]
    assert model.verdict is Verdict.WARN and "no credential for anthropic" in model.detail
    # Stopped, it is history: the last request's answer is the check again.
    stopped = replace(failing, phase=Phase.STOPPED)
    assert {c.name: c.verdict for c in report(stopped, facts()).checks}["model"] \
        is Verdict.OK


def test_an_archived_session_has_no_container_and_that_is_fine() -> None:
    r = report(session(Phase.ARCHIVED), facts(workload=None, probe=None))
    assert verdicts(facts(workload=None, probe=None), Phase.ARCHIVED)["container"] is Verdict.OK
    assert r.suggested is None
    assert not next(a for a in r.actions if a.verb is Verb.RESTART_AGENT).offered
