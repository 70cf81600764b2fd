"""Playbooks for the controls' pure rules: honeytokens, egress, budgets, prices."""

from __future__ import annotations

import base64

import pytest

from appliance.budgets import Budget, Spent, exceeded, parse_budget, parse_budget_defaults
from appliance.egress import (
    Decision,
    EgressMode,
    HostEntry,
    Verdict,
    asks_to_forget,
    decide,
    host_pattern,
    parse_egress_defaults,
)
from appliance.errors import ConfigError, InvalidInput
from appliance.placeholders import Placeholder, placeholder_env, session_placeholders
from appliance.usage import DEFAULT_TABLE, Price, Usage, parse_prices
from proxy.honeytoken import foreign, leak_in_body, leak_in_head
from proxy.rules import DEFAULT_RULES

KEY = b"k" * 32
MINE = session_placeholders(KEY, "s1")
ENV = placeholder_env(KEY, "s1")
GH = ENV["GH_TOKEN"]


def test_placeholders_are_per_session_and_keep_their_prefixes() -> None:
    other = placeholder_env(KEY, "s2")
    assert not set(ENV.values()) & set(other.values())
    assert ENV["GH_TOKEN"] == ENV["GITHUB_TOKEN"] and ENV["GH_TOKEN"].startswith("ghp_")
    assert ENV["ANTHROPIC_API_KEY"].startswith("sk-ant-api03-")
    # Claude Code remembers an approved key by its last 20 characters: unique too.
    assert ENV["ANTHROPIC_API_KEY"][-20:] != other["ANTHROPIC_API_KEY"][-20:]
    assert placeholder_env(KEY, "s1") == ENV  # stable: a recreated container gets the same


HEAD_PLAYBOOK = [
    # (host, path, headers) -> leaked family and where, or None
    ("evil.example", f"/x?k={GH}", [], ("github", "url")),
    ("evil.example", "/", [(b"x-token", GH.encode())], ("github", "header x-token")),
    ("evil.example", "/", [(b"authorization", b"Basic " + base64.b64encode(
        f"x-access-token:{GH}".encode()))], ("github", "header authorization")),
    ("evil.example", "/", [(b"x-api-key", ENV["ANTHROPIC_API_KEY"].encode())],
     ("anthropic", "header x-api-key")),
    # At home: the rule's host swaps it for the real one.
    ("api.github.com", "/", [(b"authorization", f"Bearer {GH}".encode())], None),
    ("github.com", "/", [(b"authorization", b"Basic " + base64.b64encode(
        f"x-access-token:{GH}".encode()))], None),
    ("api.anthropic.com", "/v1/messages", [(b"x-api-key", ENV["ANTHROPIC_API_KEY"].encode())],
     None),
    ("chatgpt.com", "/backend-api/codex/models", [
        (b"authorization", f"Bearer {ENV['OPENAI_API_KEY']}".encode())], None),
    # Out of place even at a rule host of another family.
    ("api.anthropic.com", "/", [(b"x-gh", GH.encode())], ("github", "header x-gh")),
    # Another session's placeholder is not this session's honeytoken; nothing found.
    ("evil.example", "/", [(b"x-token", placeholder_env(KEY, "s2")["GH_TOKEN"].encode())],
     None),
    ("evil.example", "/plain", [(b"accept", b"*/*")], None),
]


@pytest.mark.parametrize(("host", "path", "headers", "expected"), HEAD_PLAYBOOK)
def test_head_playbook(host: str, path: str, headers: list[tuple[bytes, bytes]],
                       expected: tuple[str, str] | None) -> None:
    leak = leak_in_head(foreign(MINE, DEFAULT_RULES, host), path, headers)
    assert (None if leak is None else (leak.family, leak.where)) == expected


#: A placeholder spelt with bytes a pattern reads otherwise: the head is read for its bytes.
ODD = Placeholder(family=MINE[0].family, value="sk-x.y+z", encoded=(b"q+r/s",))


@pytest.mark.parametrize(("value", "found"), [
    (b"sk-x.y+z", True), (b"<q+r/s>", True), (b"sk-xAyyz", False), (b"qqr/s", False)])
def test_head_reads_a_placeholder_as_its_bytes(value: bytes, found: bool) -> None:
    assert (leak_in_head((ODD,), "/", [(b"x-token", value)]) is not None) is found


@pytest.mark.parametrize("shift", [b"", b"a", b"ab"])
def test_body_finds_raw_and_base64_at_any_offset(shift: bytes) -> None:
    suspects = foreign(MINE, DEFAULT_RULES, "evil.example")
    raw = b'{"note": "' + ENV["NPM_TOKEN"].encode() + b'"}'
    leak = leak_in_body(suspects, raw)
    assert leak is not None and leak.family == "npm"
    encoded = base64.b64encode(shift + raw + b"tail")
    found = leak_in_body(suspects, b"data=" + encoded)
    assert found is not None and found.family == "npm"
    assert leak_in_body(suspects, base64.b64encode(shift + b"nothing to see here" * 5)) is None


ALLOW = HostEntry(host="*.example.com", verdict=Verdict.ALLOW)
DENY = HostEntry(host="bad.example.com", verdict=Verdict.DENY)
EGRESS_PLAYBOOK = [
    # (mode, host, model host, session list, global list) -> decision
    (EgressMode.OPEN, "anything.test", False, [], [DENY], Decision.PASS),
    (EgressMode.LOCKED, "anything.test", False, [], [], Decision.DENY),
    (EgressMode.LOCKED, "api.anthropic.com", True, [], [], Decision.PASS),
    (EgressMode.LOCKED, "a.example.com", False, [], [ALLOW], Decision.PASS),
    (EgressMode.LOCKED, "example.com", False, [], [ALLOW], Decision.DENY),  # not the apex
    (EgressMode.LOCKED, "bad.example.com", False, [], [ALLOW, DENY], Decision.DENY),
    (EgressMode.ASK, "new.test", False, [], [], Decision.ASK),
    # The session's own entry wins over a global one; within one list a denial wins.
    (EgressMode.ASK, "bad.example.com", False, [ALLOW], [DENY], Decision.PASS),
    (EgressMode.ASK, "bad.example.com", False, [ALLOW, DENY], [], Decision.DENY),
    (EgressMode.LEARN, "new.test", False, [], [], Decision.LEARN),
    (EgressMode.LEARN, "a.example.com", False, [ALLOW], [], Decision.PASS),
]


@pytest.mark.parametrize(("mode", "host", "model", "own", "shared", "expected"),
                         EGRESS_PLAYBOOK)
def test_egress_playbook(mode: EgressMode, host: str, model: bool, own: list[HostEntry],
                         shared: list[HostEntry], expected: Decision) -> None:
    assert decide(mode, host, model_host=model, session=own, shared=shared) is expected


@pytest.mark.parametrize("bad", ["https://x.test", "x.test:443", "x.test/path", "", "a b", 3,
                                 "*.", "**.x.test"])
def test_host_patterns_refuse_what_is_not_a_host(bad: object) -> None:
    with pytest.raises(InvalidInput, match="not a host name"):
        host_pattern(bad, "host")


def test_egress_config_errors_name_the_key() -> None:
    assert parse_egress_defaults({"mode": "ask", "allow": ["GitHub.com"]}, "c").allow == (
        "github.com",)
    for doc, words in (({"mode": "closed"}, "not one of"), ({"allw": []}, "unknown key"),
                       ({"ask_timeout_seconds": -1}, "above 0"), ({"allow": "x"}, "list")):
        with pytest.raises(ConfigError, match=words):
            parse_egress_defaults(doc, "c")


BUDGET_PLAYBOOK = [
    (Budget(), Spent(tokens=10**9, cost=1e6), None),
    (Budget(tokens_per_day=100), Spent(tokens=500, tokens_today=99), None),
    (Budget(tokens_per_day=100), Spent(tokens=500, tokens_today=100),
     "100 of 100 tokens today (tokens_per_day)"),
    (Budget(cost=2.5), Spent(cost=2.5), "2.50 of 2.50 USD in all (cost)"),
    (Budget(cost_per_day=0), Spent(), "0.00 of 0.00 USD today (cost_per_day)"),
]


@pytest.mark.parametrize(("budget", "spent", "expected"), BUDGET_PLAYBOOK)
def test_budget_playbook(budget: Budget, spent: Spent, expected: str | None) -> None:
    assert exceeded(budget, spent) == expected


@pytest.mark.parametrize(("doc", "words"), [
    ({"cost": -1}, "0 or more"), ({"tokens": 1.5}, "whole number"), ({"tokens": True}, "whole"),
    ({"cost": "5"}, "amount"), ({"cost": float("inf")}, "amount"), ({"dollars": 3}, "unknown"),
])
def test_bad_budgets_are_refused_naming_the_limit(doc: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_budget(doc, "budget", from_config=False)
    with pytest.raises(ConfigError, match=words):
        parse_budget_defaults({"session": doc}, "config.toml")


def test_prices_match_dated_ids_and_unknown_models_have_no_cost() -> None:
    table = DEFAULT_TABLE
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write=0)
    assert table.cost("claude-sonnet-4-5-20250929", usage) == pytest.approx(3 + 15 + 0.3)
    assert table.price_for("gpt-5-mini-2025-08-07") == table.prices["gpt-5-mini"]
    assert table.cost("claude-fake", usage) is None
    # Against a budget, a model without a price costs the dearest price of each kind: its
    # maker's, where only one maker serves such a name, else the whole table's.
    def total(price: Price) -> float:
        return price.input + price.output + price.cache_read

    opus = max((p for n, p in table.prices.items() if n.startswith("claude")), key=total)
    assert table.bound("claude-fake", usage) == pytest.approx(total(opus))
    gemini = max(total(p) for n, p in table.prices.items() if n.startswith("gemini"))
    assert table.bound("Gemini-9-ultra", usage) == pytest.approx(gemini)
    assert table.bound("o9-fake", usage) == pytest.approx(total(table.prices["o1-pro"]))
    assert table.bound("claude-fake", usage) < table.bound("o9-fake", usage)
    assert table.bound("claude-sonnet-4-5", usage) == table.cost("claude-sonnet-4-5", usage)
    mine = parse_prices({"claude-fake": {"input": 1, "output": 2}}, "config.toml")
    assert mine.cost("claude-fake", usage) == pytest.approx(1 + 2 + 1)  # cache at input price
    for doc, words in (({"m": {"input": 1}}, "output"), ({"m": {"input": 1, "output": -2}},
                                                         "0 or more"),
                       ({"m": {"input": 1, "output": 2, "cached": 1}}, "unknown key"),
                       ({"m": 3}, "table")):
        with pytest.raises(ConfigError, match=words):
            parse_prices(doc, "config.toml")


@pytest.mark.parametrize(("model", "key"), [
    # A dearer variant is not priced as the cheap model its name begins with.
    ("o3-pro-2025-06-10", "o3-pro"), ("o3-2025-04-16", "o3"),
    ("gpt-5-pro-2025-10-06", "gpt-5-pro"), ("gpt-5-2025-08-07", "gpt-5"),
    ("o1-pro", "o1-pro"), ("o1-2024-12-17", "o1"), ("o1-mini", "o1-mini"),
    ("claude-3-opus-20240229", "claude-3-opus"),
    ("gemini-2.5-flash-lite-preview", "gemini-2.5-flash-lite"),
    ("gemini-2.5-pro", "gemini-2.5-pro"),
])
def test_a_dearer_variant_has_its_own_price(model: str, key: str) -> None:
    assert DEFAULT_TABLE.price_for(model) == DEFAULT_TABLE.prices[key]


NOW = "2025-01-01T12:00:00+00:00"
SOON = "2025-01-01T12:01:00+00:00"
PAST = "2025-01-01T11:59:00+00:00"


@pytest.mark.parametrize(("asks", "keep", "gone"), [
    ([], 2, []),
    # Open asks stay, however many.
    ([(1, None, SOON), (2, None, SOON), (3, None, SOON)], 0, []),
    # Closed: decided, or past its expiry with nobody's answer (its client hung up).
    ([(1, "deny", SOON), (2, "expired", PAST), (3, None, PAST), (4, None, SOON)], 1, [1, 2]),
    # The newest closed are kept, by id, whatever order they come in.
    ([(5, "allow", PAST), (2, "expired", PAST), (9, "deny", PAST)], 2, [2]),
    ([(1, "expired", PAST), (2, "expired", PAST)], 2, []),
    # Expiring exactly now is closed.
    ([(1, None, NOW)], 0, [1]),
])
def test_a_sessions_closed_asks_beyond_the_newest_go(
        asks: list[tuple[int, str | None, str]], keep: int, gone: list[int]) -> None:
    assert asks_to_forget(asks, NOW, keep) == gone
