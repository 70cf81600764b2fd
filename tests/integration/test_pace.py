"""A session that floods GitHub with the person's token is held to its pace; the others keep
theirs (the real appliance, real session containers, a fake GitHub on loopback).

The proxy runs with ``[paces] github_token = { per_hour = 360, burst = 2 }`` and holds a
request at most 15 s: two go at once, the next ones one every 10 s. The attacker is the
agent, as uid 1000 in its container: two requests, then ten at once, each with the
placeholder its environment holds (the proxy puts the real token in). What must hold: the
two go; of the ten, the ones that would wait past the hold are refused with 429 and
``Retry-After`` and never reach GitHub, one is held until it is on time and goes; every
request has its audit line saying which; the session's journal says it is paced. Another
session spends the same credential at its own pace, untouched by the flood.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_app import behind_proxy, create, in_container
from tests.support.appliance import Appliance
from tests.support.fake_github import TOKEN, FakeGitHub

PACED = "pace_hold_seconds = 15\n"
PACES = "[paces]\ngithub_token = { per_hour = 360, burst = 2 }\n"


@pytest.fixture
def app(tmp_path: Path, agent_image: str, github: FakeGitHub) -> Iterator[Appliance]:
    toml = PACED + github.proxy_toml() + PACES
    with behind_proxy(tmp_path / "home", agent_image, toml,
                      env={"GITHUB_TOKEN": TOKEN}) as a:
        yield a


def ask(app: Appliance, s: dict[str, Any], tag: str, count: int, *, together: bool) -> list[str]:
    """``count`` GitHub API calls from the session's container, one after another or all at
    once: each call's status and Retry-After, in the order they ended."""
    one = ("curl -s -o /tmp/body-$i -w '%{http_code} %header{retry-after}\\n' "
           "-H \"Authorization: Bearer $GITHUB_TOKEN\" "
           f"https://api.github.com/repos/octo/{tag}?n=$i")
    script = (f"for i in $(seq {count}); do {one} & done; wait" if together
              else f"for i in $(seq {count}); do {one}; done")
    _, out = in_container(app, s, script + "; cat /tmp/body-*")
    return out.splitlines()


def test_an_agent_flooding_github_is_held_to_its_pace_and_the_others_keep_theirs(
        app: Appliance, github: FakeGitHub, repo: Path) -> None:
    flood, calm = create(app, repo, "flood"), create(app, repo, "calm")
    first = ask(app, flood, "flood", 2, together=False)
    assert first[:2] == ["404 ", "404 "]  # GitHub's answer: the burst goes at once
    out = ask(app, flood, "flood", 10, together=True)
    codes = [line.split(" ") for line in out[:10]]
    refused = [after for code, after in codes if code == "429"]
    went = [code for code, _ in codes if code != "429"]
    assert refused and went and set(went) == {"404"}, out
    assert all(int(after) >= 1 for after in refused), out
    assert "Held back by Clauderon: session 'flood' sends requests with github_token " \
           "faster than its pace (360 an hour, 2 at once)" in "\n".join(out[10:])
    # What GitHub saw of the flood: exactly what was let go, every one with the real token.
    seen = [s.path for s in github.seen if s.path.startswith("/repos/octo/flood")]
    assert len(seen) == 2 + len(went)

    # The other session, same credential: its own burst, not slowed.
    assert ask(app, calm, "calm", 2, together=False)[:2] == ["404 ", "404 "]

    # One line a request (one held past ``long_after`` has its opening line too).
    mine = app.audit(lambda x: x["session"] == flood["id"] and "/repos/octo/" in x["path"]
                     and x.get("phase") != "open", at_least=12)
    assert len(mine) == 12
    assert sorted(x["status"] for x in mine) == sorted([404] * (2 + len(went))
                                                       + [429] * len(refused))
    notes = [x.get("note") or "" for x in mine]
    assert sum(n.startswith("pace: github_token held ") for n in notes) >= 1
    assert [x["error"] for x in mine if x["status"] == 429] == ["PACED"] * len(refused)
    assert all(x["decision"] == "blocked" for x in mine if x["status"] == 429)
    others = app.audit(lambda x: x["session"] == calm["id"] and "/repos/octo/" in x["path"],
                       at_least=2)
    assert [(x["status"], x.get("note")) for x in others] == [(404, None)] * 2

    def paced(s: dict[str, Any]) -> list[dict[str, Any]]:
        events = app.client().get(f"/api/sessions/{s['id']}/events")["events"]
        return [e["payload"] for e in events if e["kind"] == "paced"]

    assert paced(flood) == [{"credential": "github_token", "host": "api.github.com"}]
    assert paced(calm) == []
