"""``clauderon egress``: its words in, the API call out; the answer in, the text out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from appliance.errors import InvalidInput
from cli.controls_commands import egress_call, egress_view

ONE = "/api/sessions/s1/egress"


@pytest.mark.parametrize(("words", "method", "path", "body"), [
    (("pending", None, None), "GET", "/api/egress", None),
    (("allow-request", "7", None), "POST", "/api/egress/pending/7", {"decision": "allow"}),
    (("deny-request", "7", None), "POST", "/api/egress/pending/7", {"decision": "deny"}),
    (("list", None, None), "GET", "/api/egress", None),
    (("list", "*", None), "GET", "/api/egress", None),
    (("list", "s1", None), "GET", ONE, None),
    (("mode", "s1", "ask"), "POST", f"{ONE}/mode", {"mode": "ask"}),
    (("mode", "s1", "default"), "POST", f"{ONE}/mode", {"mode": None}),
    (("allow", "*", "a.test"), "PUT", "/api/egress/hosts", {"host": "a.test",
                                                            "verdict": "allow"}),
    (("deny", "s1", "a.test"), "PUT", f"{ONE}/hosts", {"host": "a.test", "verdict": "deny"}),
    (("forget", "s1", "a.test"), "DELETE", f"{ONE}/hosts/a.test", None),
])
def test_each_action_makes_its_call(words: tuple[str, str | None, str | None], method: str,
                                    path: str, body: dict[str, Any] | None) -> None:
    call = egress_call(*words)
    assert (call.method, call.path, call.json) == (method, path, body)


@pytest.mark.parametrize(("words", "says"), [
    (("mode", None, "ask"), "egress mode SESSION"),
    (("mode", "*", "ask"), "egress mode SESSION"),
    (("mode", "s1", None), "egress mode SESSION"),
    (("allow", "s1", None), "egress allow SESSION|'*' HOST"),
    (("deny", "*", ""), "egress deny SESSION|'*' HOST"),
    (("forget", "s1", None), "egress forget SESSION|'*' HOST"),
])
def test_missing_words_are_a_usage_error(words: tuple[str, str | None, str | None],
                                         says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        egress_call(*words)


ENTRY = {"scope": "s1", "site": "a.test", "host": "a.test", "verdict": "allow",
         "source": "person"}
SHARED = {**ENTRY, "scope": "*", "host": "xn--80ak6aa92e.com", "unicode": "\u0430pple.com",
          "lookalike": "looks like apple.com"}
PENDING = {"id": 7, "session_id": "s1", "site": "b.test", "host": "b.test",
           "expires_at": "12:00"}


@pytest.mark.parametrize(("action", "found", "shown", "lines"), [
    ("pending", {"pending": []}, [], ["No request is waiting."]),
    ("pending", {"pending": [PENDING]}, [PENDING], ["ID", "SESSION", "b.test", "12:00"]),
    ("deny-request", {"host": "b.test", "decision": "deny"}, None, ["b.test: deny"]),
    ("mode", {"session": {"name": "s1", "egress_mode": None}}, {"name": "s1",
                                                               "egress_mode": None},
     ["s1  egress mode default"]),
    ("list", {"mode": "ask", "entries": []}, None, ["mode ask", "(no hosts listed)"]),
    ("allow", {"mode": "ask", "entries": [ENTRY], "shared": [SHARED]}, None,
     ["mode ask", "SCOPE", "xn--80ak6aa92e.com", "\u0430pple.com (looks like apple.com)",
      "a.test"]),
])
def test_each_answer_is_shown(action: str, found: dict[str, Any], shown: Any,
                              lines: list[str]) -> None:
    value, text = egress_view(action, found)
    assert value == (found if shown is None else shown)
    missing = [line for line in lines if line not in text]
    assert not missing, text
