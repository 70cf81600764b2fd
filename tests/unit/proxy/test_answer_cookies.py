"""The cookies taken out of an answer to the person's credential (pure), and the audit
note that names them."""

from __future__ import annotations

import pytest

from proxy.answer_cookies import Minted, carried, uncookied
from proxy.rules import DEFAULT_RULES


@pytest.mark.parametrize(("headers", "note", "kept", "said"), [
    ([(b"content-type", b"a")], None, [(b"content-type", b"a")], None),
    ([(b"Set-Cookie", b"sessionKey=s; Path=/"), (b"x", b"y")], None, [(b"x", b"y")],
     "Set-Cookie dropped from an answer to the person's credential: sessionKey"),
    ([(b"set-cookie", b"a=1"), (b"set-cookie", b"a=2"), (b"SET-COOKIE2", b"b=3")], "egress",
     [], "egress; Set-Cookie dropped from an answer to the person's credential: a, b"),
    ([(b"set-cookie", b"=novalue")], None, [],
     "Set-Cookie dropped from an answer to the person's credential: ?"),
    ([(b"x-set-cookie", b"a=1")], "n", [(b"x-set-cookie", b"a=1")], "n"),
])
def test_uncookied(headers: list[tuple[bytes, bytes]], note: str | None,
                   kept: list[tuple[bytes, bytes]], said: str | None) -> None:
    assert uncookied(headers, note) == (kept, said)


@pytest.mark.parametrize(("value", "away"), [
    (b"https://agents.example/cb?code=C0DE&state=s", ("agents.example", "code")),
    (b"https://agents.example/cb#access_token=T", ("agents.example", "access_token")),
    (b"https://agents.example/#/cb?accessToken=T", ("agents.example", "accessToken")),
    (b"https://agents.example/cb?auth-code=C", ("agents.example", "auth-code")),
    (b"https://agents.example/cb?oauth_verifier=V", ("agents.example", "oauth_verifier")),
    (b"https://agents.example/cb?c%6fde=C", ("agents.example", "code")),
    (b"https://agents.example/cb;code=C", ("agents.example", "code")),
    (b"0; url=https://agents.example/?ticket=T", ("agents.example", "ticket")),
    (b"0;URL='https://agents.example/?ticket=T'", ("agents.example", "ticket")),
    (b"0,url=https://agents.example/?code=C", ("agents.example", "code")),
    (b"0 URL = https://agents.example/?code=C", ("agents.example", "code")),
    (b"0;https://agents.example/?code=C", ("agents.example", "code")),
    (b"0.5; url=https://agents.example/?code=C", ("agents.example", "code")),
    (b'0;url=https://agents.example/?a="&code=C', ("agents.example", "code")),
    (b"0;url='https://agents.example/?a=1'&code=C", None),
    (b"//agents.example/cb?code=C", ("agents.example", "code")),
    (b"  https:\\\\agents.example\\cb?code=C", ("agents.example", "code")),
    (b"ht\ttps://agents.example/cb?code=C", ("agents.example", "code")),
    (b"https:/agents.example/cb?code=C", ("?", "code")),
    (b"https://[agents/cb?code=C", ("?", "code")),
    (b"https://AGENTS.example./cb?token=C", ("agents.example.", "token")),
    (b"https://codeload.github.com/o/r/legacy.tar.gz/main?token=C",
     ("codeload.github.com", "token")),
    (b"https://auth.openai.com/cb?code=C", ("auth.openai.com", "code")),  # not /oauth/token
    (b"/next?code=C", None),
    (b"next?code=C", None),
    (b"https://api.github.com/next?token=C", None),
    (b"https://x.github.com.agents.example/?code=C", ("x.github.com.agents.example", "code")),
    (b"https://agents.example/cb?code=", None),
    (b"https://agents.example/cb?page=2&error_code=E&codec=x", None),
    (b"https://agents.example/code=C", None),
    (b"https://blobs.example/l?X-Amz-Security-Token=T&X-Amz-Signature=S", None),
    (b"https://blobs.example/l?X-Goog-Signature=S", None),
])
def test_carried(value: bytes, away: tuple[str, str] | None) -> None:
    assert carried(value, DEFAULT_RULES) == away


def test_a_code_carried_away_refuses_the_answer() -> None:
    with pytest.raises(Minted, match=r"agents\.example with a one-time code or token \(code\)"):
        uncookied([(b"Location", b"https://agents.example/?code=C")], None, DEFAULT_RULES)
    assert uncookied([(b"link", b"<https://agents.example/?code=C>")], None, DEFAULT_RULES) \
        == ([(b"link", b"<https://agents.example/?code=C>")], None)
