"""Sign-in records in a real SQLite store: hashed secrets, single use, expiry, rotation,
revocation; and the sign-in rate limit."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.ratelimit import Every, WindowLimiter
from appliance.auth import (
    FRESH_FOR,
    LINK_LIFETIME,
    SESSION_IDLE,
    Method,
    Scope,
    digest,
    label_for,
)
from appliance.authstore import ANSWERED, AuthStore
from appliance.errors import NotFound, Unauthorized
from appliance.store import Store

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db.sqlite")
    yield s
    s.close()


@pytest.fixture
def auth(store: Store) -> AuthStore:
    return AuthStore(store)


def dump(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def test_secrets_are_stored_only_as_digests(auth: AuthStore, tmp_path: Path) -> None:
    _, link = auth.create_link(T0)
    _, cookie = auth.create_session(method=Method.LINK, label="x", now=T0)
    _, token = auth.create_token(scope=Scope.READ_ONLY, name="ci", now=T0)
    assert token.startswith("crn_")
    text = dump(tmp_path / "db.sqlite")
    for secret in (link, cookie, token):
        assert len(secret) >= 43 and secret not in text


def test_a_link_works_once_and_within_five_minutes(auth: AuthStore) -> None:
    _, secret = auth.create_link(T0)
    auth.redeem_link(secret, T0 + timedelta(minutes=1))
    with pytest.raises(Unauthorized, match="used already"):
        auth.redeem_link(secret, T0 + timedelta(minutes=2))
    _, late = auth.create_link(T0)
    with pytest.raises(Unauthorized, match="expired"):
        auth.redeem_link(late, T0 + LINK_LIFETIME)
    with pytest.raises(Unauthorized, match="not valid"):
        auth.redeem_link("x" + secret[1:], T0)


def test_racing_for_one_link_only_one_wins(tmp_path: Path) -> None:
    stores = [Store.open(tmp_path / "db.sqlite") for _ in range(8)]
    _, secret = AuthStore(stores[0]).create_link(T0)
    wins: list[int] = []
    losses: list[str] = []

    def go(i: int) -> None:
        try:
            AuthStore(stores[i]).redeem_link(secret, T0)
            wins.append(i)
        except Unauthorized as exc:
            losses.append(exc.message)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in stores:
        s.close()
    assert len(wins) == 1 and len(losses) == 7
    assert all("used already" in m for m in losses)


def test_sessions_slide_rotate_and_end(auth: AuthStore) -> None:
    first, secret = auth.create_session(method=Method.LINK, label="a", now=T0)
    assert auth.session_by_secret(secret, T0) == first
    assert first.fresh(T0) and not first.fresh(T0 + FRESH_FOR)
    later = T0 + SESSION_IDLE - timedelta(seconds=1)
    assert auth.session_by_secret(secret, later) is not None
    assert auth.session_by_secret(secret, T0 + SESSION_IDLE) is None  # idle for 30 days
    auth.touch_session(first.id, later)
    assert auth.session_by_secret(secret, T0 + SESSION_IDLE + timedelta(days=29)) is not None
    # Signing in again from the same browser replaces (rotates) its session.
    second, new_secret = auth.create_session(method=Method.PASSKEY, label="a", now=later,
                                             replacing=first.id)
    assert auth.session_by_secret(secret, later) is None
    assert auth.session_by_secret(new_secret, later) == second
    auth.end_session(second.id)
    assert auth.session_by_secret(new_secret, later) is None


def test_revoking_a_passkey_signs_out_its_browsers(auth: AuthStore) -> None:
    key = auth.add_passkey(credential_id="cred", public_key=b"k", sign_count=0,
                           rp_id="localhost", name="laptop", backed_up=False, now=T0)
    _, by_key = auth.create_session(method=Method.PASSKEY, passkey_id=key.id, label="a",
                                    now=T0)
    _, by_link = auth.create_session(method=Method.LINK, label="b", now=T0)
    token, secret = auth.create_token(scope=Scope.READ_WRITE, name="ci", now=T0)
    listed = auth.records(T0)
    assert [len(listed[k]) for k in ("sessions", "passkeys", "tokens")] == [2, 1, 1]
    assert auth.revoke(key.id) == "passkey"
    assert auth.session_by_secret(by_key, T0) is None
    assert auth.session_by_secret(by_link, T0) is not None
    auth.revoke(token.id)
    assert auth.token_by_secret(secret) is None
    with pytest.raises(NotFound):
        auth.revoke(token.id)
    with pytest.raises(NotFound, match="not a record id"):
        auth.revoke("x-123")


def test_challenges_answer_once_and_expire(auth: AuthStore) -> None:
    pending = auth.put_challenge(kind="login", challenge=b"c", rp_id="localhost",
                                 origin="http://localhost:1", session_id=None, now=T0)
    assert auth.take_challenge(pending.id, "login", T0).challenge == b"c"
    with pytest.raises(Unauthorized, match="answered already"):
        auth.take_challenge(pending.id, "login", T0)
    other = auth.put_challenge(kind="register", challenge=b"c", rp_id="localhost",
                               origin="http://localhost:1", session_id="s-1", now=T0)
    with pytest.raises(Unauthorized):
        auth.take_challenge(other.id, "login", T0)  # a register challenge is not a login one
    late = auth.put_challenge(kind="login", challenge=b"c", rp_id="localhost",
                              origin="http://localhost:1", session_id=None, now=T0)
    with pytest.raises(Unauthorized, match="expired"):
        auth.take_challenge(late.id, "login", T0 + timedelta(minutes=5))


def test_the_limiter_counts_per_client_and_in_all() -> None:
    now = [0.0]
    limiter = WindowLimiter(per_client=3, overall=5, window=60, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [None, None, None]
    wait = limiter.allow("a")
    assert wait is not None and 0 < wait <= 60
    assert limiter.allow("b") is None and limiter.allow("c") is None
    assert limiter.allow("d") is not None  # five in the window from everyone
    now[0] = 61
    assert limiter.allow("a") is None


def test_the_hook_limiter_bounds_each_session_alone() -> None:
    """No bound in all: one session using up its room leaves every other's whole."""
    now = [0.0]
    limiter = WindowLimiter(per_client=200, overall=None, window=10, clock=lambda: now[0])
    assert all(limiter.allow("loud") is None for _ in range(200))
    assert limiter.allow("loud") == 10
    assert all(limiter.allow(f"calm{i}") is None for i in range(300))
    now[0] = 5
    assert limiter.allow("loud") == 5
    now[0] = 10
    assert limiter.allow("loud") is None


def test_labels_are_short_and_printable() -> None:
    chrome = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")
    assert label_for(chrome) == "Chrome on Linux"
    assert label_for("") == "a browser"
    assert label_for("\x1b[31mEvil/1.0" * 50).isprintable()


def test_a_passkey_sign_in_is_recorded_once(auth: AuthStore) -> None:
    """Only an answer that verified writes: its ceremony, once (a replay is refused), kept
    until the ceremony would have expired, and never taken for a pending ceremony."""
    auth.answer_login("ceremony-token", T0 + timedelta(minutes=5), T0)
    with pytest.raises(Unauthorized, match="answered already"):
        auth.answer_login("ceremony-token", T0 + timedelta(minutes=5), T0 + timedelta(minutes=1))
    with pytest.raises(Unauthorized):
        auth.take_challenge(digest("ceremony-token"), "login", T0)
    auth.answer_login("another", T0 + timedelta(minutes=5), T0 + timedelta(minutes=5))  # purges
    assert auth.store.rows("SELECT kind FROM auth_challenges") and all(
        row["kind"] == ANSWERED for row in auth.store.rows("SELECT kind FROM auth_challenges"))
    assert len(auth.store.rows("SELECT id FROM auth_challenges")) == 1


def test_a_link_no_one_made_is_refused_without_a_write(auth: AuthStore, tmp_path: Path) -> None:
    """A flood of guesses must not queue for the database's write lock (the reconciler
    writes there too): while another process holds it, a wrong secret is still refused at
    once, as unknown, and a real link waits for the lock as every write does."""
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unauthorized, match="not valid"):
            auth.redeem_link("nobody-made-this", T0)
    finally:
        other.execute("ROLLBACK")
        other.close()
    link, secret = auth.create_link(T0)
    assert auth.redeem_link(secret, T0).id == link.id
    with pytest.raises(Unauthorized, match="used already"):
        auth.redeem_link(secret, T0)


def test_every_nth_call_for_each_key_the_first_included() -> None:
    every = Every(3, keys=2)
    assert [every("a") for _ in range(7)] == [True, False, False, True, False, False, True]
    assert every("b") and not every("b")
    assert every("c")  # a third key: the one called least recently ("a") is forgotten
    assert every("a")  # forgotten: its next call is a first again
    assert every("b")  # and "a" came back in its place, pushing "b" out
