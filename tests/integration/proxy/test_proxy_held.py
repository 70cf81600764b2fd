"""A request held to its pace whose client hangs up is never sent (the running proxy,
httpx through it, the fake upstream on loopback)."""

from __future__ import annotations

import trio
from conftest import Proxy, client, override
from proxy_fakes import FakeUpstream

from appliance.audit import parse_line
from proxy.pace import Pace


async def test_a_client_that_hangs_up_while_held_spends_nothing_upstream(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    override(proxy, paces={"github_token": Pace(360, 1)}, pace_hold=15.0)  # one every 10 s
    auth = proxy.add_session("impatient")
    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            assert (await c.get("https://api.github.com/first")).status_code == 200
            with trio.move_on_after(1):  # held ~10 s: the client gives up first
                await c.get("https://api.github.com/held")
        path = proxy.audit_path
        while len(lines := path.read_text().splitlines()) < 2:
            await trio.sleep(0.05)
    records = [parse_line(x) for x in lines]
    assert [(r.path, r.status, r.error) for r in records] == [
        ("/first", 200, None), ("/held", 0, "CLIENT_GONE")]
    assert (records[1].note or "").startswith("pace: github_token held "), records[1]
    assert [s.target for s in fake.seen] == ["/first"]
    # The held request took its place in the pace all the same: the next is held too.
    admission = proxy.state.pacer.take((auth[0], "github_token"), trio.current_time(),
                                       Pace(360, 1), 0.0)
    assert admission.refused
