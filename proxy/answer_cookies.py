"""The cookies an answer to a credentialed request sets: taken out. Pure.

A service answering a request the proxy put the person's credential into may set a session
cookie of the person's account (a login's ``Set-Cookie``): a lasting credential of its own,
which the agent could keep, send from anywhere, or send back through the proxy for a
request the proxy judges without it. None of the agent CLIs needs one from the hosts the
proxy injects for (the model APIs, GitHub, the registries answer a bearer token, not a
cookie), so every ``Set-Cookie`` (and the old ``Set-Cookie2``) of such an answer is dropped
and the audit line names the cookies (:func:`uncookied`), never their values. A trailer's
cookie is dropped from every answer (``framing.TRAILER_DROP``); a 1xx before the answer never
leaves the proxy (``upload.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]
SETTERS = frozenset({b"set-cookie", b"set-cookie2"})


def uncookied(headers: Iterable[tuple[bytes, bytes]], note: str | None
              ) -> tuple[Headers, str | None]:
    """``headers`` without the fields that set a cookie, and the audit ``note`` naming
    those cookies after what it said already (as it was when none is set)."""
    kept: Headers = []
    names: dict[str, None] = {}
    for name, value in headers:
        if name.lower() in SETTERS:
            names[value.split(b"=", 1)[0].strip().decode("latin-1")[:64] or "?"] = None
        else:
            kept.append((name, value))
    if not names:
        return kept, note
    said = f"Set-Cookie dropped from an answer to the person's credential: {', '.join(names)}"
    return kept, f"{note}; {said}" if note else said
