"""What an answer to a credentialed request must not hand the agent: cookies, and a one-time
code its redirect carries away. Pure.

A service answering a request the proxy put the person's credential into may set a session
cookie of the person's account (a login's ``Set-Cookie``): a lasting credential of its own,
which the agent could keep, send from anywhere, or send back through the proxy for a
request the proxy judges without it. None of the agent CLIs needs one from the hosts the
proxy injects for (the model APIs, GitHub, the registries answer a bearer token, not a
cookie), so every ``Set-Cookie`` (and the old ``Set-Cookie2``) of such an answer is dropped
and the audit line names the cookies (:func:`uncookied`), never their values. A trailer's
cookie is dropped from every answer (``framing.TRAILER_DROP``); a 1xx before the answer never
leaves the proxy (``upload.py``).

Such an answer may also send the agent's client on to another host with a one-time code
or token in the URL (``Location: https://agents.example/cb?code=...``, an OAuth grant the
agent asked for with the person's login, a ``#access_token=``, a ``ticket=``): minted with
the person's credential, usable from anywhere, for whatever the agent's client was granted.
An answer whose ``Location``, ``Content-Location`` or ``Refresh`` carries one (by its
parameter's name, in the query or the fragment) to a host no rule puts a credential in is
refused whole (:class:`Minted`): its body would quote the URL too. A redirect on the same
host, or to another the proxy injects for, goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit

from proxy.rules import Rule, match_rule

Headers = list[tuple[bytes, bytes]]
SETTERS = frozenset({b"set-cookie", b"set-cookie2"})
#: Where an answer sends the agent's client on.
POINTERS = frozenset({b"location", b"content-location", b"refresh"})
#: A parameter that holds a one-time code or a token, its name lower-cased, letters and
#: digits alone: ``code``, ``auth_code``, ``access_token``, ``accessToken``, ``ticket``,
#: ``oauth_verifier``, ``client_secret``. Not a blob store's signed URL's own
#: (``X-Amz-Security-Token``, ``X-Goog-*``): the way a registry hands out a layer.
CODES = re.compile(r"(?!xamz|xgoog)(?:code|authcode|authorizationcode"
                   r"|\w*(?:token|secret|ticket|verifier))")


#: A ``Refresh`` field as a browser reads it (HTML's declarative refresh): a delay of digits
#: and dots, a ``;``, a ``,`` or a space, an ``url=`` or none, the URL quoted or not.
REFRESH = re.compile(r"\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?(['\"]?)(.*)",
                     re.IGNORECASE | re.DOTALL)


class Minted(ValueError):
    """An answer's redirect carries a one-time code away (its message says where)."""


def uncookied(headers: Iterable[tuple[bytes, bytes]], note: str | None,
              rules: Iterable[Rule] = ()) -> tuple[Headers, str | None]:
    """``headers`` without the fields that set a cookie, and the audit ``note`` naming
    those cookies after what it said already (as it was when none is set); :class:`Minted`
    when a redirect carries a code to a host none of ``rules`` injects for."""
    kept: Headers = []
    names: dict[str, None] = {}
    for name, value in headers:
        if name.lower() in SETTERS:
            names[value.split(b"=", 1)[0].strip().decode("latin-1")[:64] or "?"] = None
            continue
        if name.lower() in POINTERS and (away := carried(value, rules)) is not None:
            raise Minted(f"its {name.decode('latin-1')} sends the agent to {away[0]} with a "
                         f"one-time code or token ({away[1]}) minted with the person's "
                         "credential: refused")
        kept.append((name, value))
    if not names:
        return kept, note
    said = f"Set-Cookie dropped from an answer to the person's credential: {', '.join(names)}"
    return kept, f"{note}; {said}" if note else said


def carried(value: bytes, rules: Iterable[Rule]) -> tuple[str, str] | None:
    """The host (``?`` when none reads) and the parameter a URL carries a code to, when no
    rule injects there; None for a URL on the same host or one without a code. Read as a
    browser reads it: controls and spaces around it dropped, tabs and newlines in it, a
    backslash as a slash; a ``Refresh`` field's URL (:data:`REFRESH`)."""
    text = value.decode("latin-1")
    if (m := REFRESH.match(text)) and m.start(1):  # quoted up to its quote, else to its end
        text = m[2].split(m[1], 1)[0] if m[1] else m[2]
    text = re.sub(r"[\t\n\r]", "", text).strip("\x00- ").replace("\\", "/")
    params = [unquote_plus(p.partition("=")[0]) for p in re.split(r"[?&#;]", text)[1:]
              if p.partition("=")[2]]
    code = next((p for p in params if CODES.fullmatch(re.sub(r"[\W_]", "", p.lower()))), None)
    try:
        split = urlsplit(text)
    except ValueError:  # no host a parser agrees on: not this one
        return None if code is None else ("?", code)
    if code is None or not (split.scheme or split.netloc):
        return None
    host = split.hostname or ""
    if host and match_rule(tuple(rules), host, split.path or "/") is not None:
        return None
    return host or "?", code
