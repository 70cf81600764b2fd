"""The passkey sign-in ceremony's token (``appliance/auth.py``): asking for options writes
nothing, so the token alone must prove that this appliance made it, for this address, and
not long ago. Pure: table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.auth import open_login, seal_login
from appliance.errors import Unauthorized

KEY = b"k" * 32
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RP, ORIGIN = "localhost", "http://localhost:3030"
CHALLENGE = bytes(range(32))


def token(**changes: object) -> str:
    args: dict[str, object] = {"challenge": CHALLENGE, "rp_id": RP, "origin": ORIGIN,
                               "expires_at": T0 + timedelta(minutes=5)}
    args.update(changes)
    return seal_login(KEY, **args)  # type: ignore[arg-type]


def test_a_token_gives_back_its_challenge_and_expiry_where_it_was_made() -> None:
    challenge, expires_at = open_login(KEY, token(), rp_id=RP, origin=ORIGIN, now=T0)
    assert challenge == CHALLENGE and expires_at == T0 + timedelta(minutes=5)
    assert len(token()) < 100


def _altered(part: int) -> str:
    parts = token().split(".")
    parts[part] = ("B" if parts[part][0] != "B" else "C") + parts[part][1:]
    return ".".join(parts)


@pytest.mark.parametrize(("presented", "key", "rp_id", "origin", "now", "why"), [
    (token(), b"x" * 32, RP, ORIGIN, T0, "unknown"),  # another appliance made it
    (token(), KEY, "evil.example", ORIGIN, T0, "another address"),
    (token(), KEY, RP, "http://localhost:9999", T0, "another address"),
    (_altered(0), KEY, RP, ORIGIN, T0, "unknown"),  # another challenge
    (token().replace(".", ".9", 1), KEY, RP, ORIGIN, T0, "unknown"),  # a later expiry
    (_altered(2), KEY, RP, ORIGIN, T0, "unknown"),
    (token(), KEY, RP, ORIGIN, T0 + timedelta(minutes=5), "expired"),
    ("", KEY, RP, ORIGIN, T0, "unknown"),
    ("a.b", KEY, RP, ORIGIN, T0, "unknown"),
    ("a.-5.b", KEY, RP, ORIGIN, T0, "unknown"),
    ("a.99999999999999999999.b", KEY, RP, ORIGIN, T0, "unknown"),
    ("\u00e9.1.\u00e9", KEY, RP, ORIGIN, T0, "unknown"),
])
def test_a_token_made_elsewhere_altered_or_late_is_refused(
        presented: str, key: bytes, rp_id: str, origin: str, now: datetime, why: str) -> None:
    with pytest.raises(Unauthorized, match=why):
        open_login(key, presented, rp_id=rp_id, origin=origin, now=now)
