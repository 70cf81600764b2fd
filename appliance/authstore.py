"""Sign-in records in SQLite: the ``auth_*`` tables of :mod:`appliance.store` (migration 3).

Synchronous like the store it rides on (services call it through ``AsyncStore.run``). A
secret is looked up by its digest (an indexed equality on a hash: the time it takes says
nothing about the secret), then compared again in constant time. Single use is a single
``UPDATE ... WHERE used_at IS NULL``: two browsers racing for one link cannot both win.
Expired links, ceremonies and sessions are purged whenever new ones are made.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import Any

from appliance.auth import (
    CHALLENGE_LIFETIME,
    LINK_LIFETIME,
    SESSION_IDLE,
    ApiToken,
    BrowserSession,
    Challenge,
    Kind,
    Method,
    Passkey,
    Scope,
    SignInLink,
    digest,
    kind_of,
    new_id,
    new_secret,
    same_digest,
)
from appliance.errors import Conflict, NotFound, Unauthorized
from appliance.store import Store

log = logging.getLogger(__name__)

TOKEN_PREFIX = "crn_"  # noqa: S105 (marks a token for secret scanners)
#: The kind of an ``auth_challenges`` row that marks a passkey sign-in answered (its id is
#: the digest of the ceremony's token; the sign-in's own challenge is in that token).
ANSWERED = "login-answered"


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _session(row: sqlite3.Row) -> BrowserSession:
    return BrowserSession(id=row["id"], method=Method(row["method"]),
                          passkey_id=row["passkey_id"], label=row["label"],
                          created_at=datetime.fromisoformat(row["created_at"]),
                          last_seen_at=datetime.fromisoformat(row["last_seen_at"]))


def _passkey(row: sqlite3.Row) -> Passkey:
    return Passkey(id=row["id"], credential_id=row["credential_id"],
                   public_key=bytes(row["public_key"]), sign_count=row["sign_count"],
                   rp_id=row["rp_id"], name=row["name"], backed_up=bool(row["backed_up"]),
                   created_at=datetime.fromisoformat(row["created_at"]),
                   last_used_at=_dt(row["last_used_at"]))


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(id=row["id"], scope=Scope(row["scope"]), name=row["name"],
                    created_at=datetime.fromisoformat(row["created_at"]),
                    last_used_at=_dt(row["last_used_at"]))


def _link(row: sqlite3.Row) -> SignInLink:
    return SignInLink(id=row["id"], created_at=datetime.fromisoformat(row["created_at"]),
                      expires_at=datetime.fromisoformat(row["expires_at"]),
                      used_at=_dt(row["used_at"]))


class AuthStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _by_secret(self, table: str, secret: str) -> sqlite3.Row | None:
        """The row of ``table`` holding ``secret`` (by its digest, then in constant time)."""
        rows = self.store.rows(f"SELECT * FROM {table} WHERE secret_hash = ?", (digest(secret),))
        return rows[0] if rows and same_digest(secret, rows[0]["secret_hash"]) else None

    def _purge(self, conn: sqlite3.Connection, now: datetime) -> None:
        stamp = now.isoformat()
        conn.execute("DELETE FROM auth_links WHERE expires_at <= ? OR used_at IS NOT NULL "
                     "AND used_at <= ?", (stamp, (now - LINK_LIFETIME).isoformat()))
        conn.execute("DELETE FROM auth_challenges WHERE expires_at <= ?", (stamp,))
        conn.execute("DELETE FROM auth_sessions WHERE last_seen_at <= ?",
                     ((now - SESSION_IDLE).isoformat(),))

    # --- one-time links -------------------------------------------------------------
    def create_link(self, now: datetime) -> tuple[SignInLink, str]:
        secret = new_secret()
        link = SignInLink(id=new_id(Kind.LINK), created_at=now, expires_at=now + LINK_LIFETIME,
                          used_at=None)
        with self.store.transaction() as conn:
            self._purge(conn, now)
            conn.execute("INSERT INTO auth_links VALUES (?, ?, ?, ?, NULL)",
                         (link.id, digest(secret), now.isoformat(),
                          link.expires_at.isoformat()))
        return link, secret

    def redeem_link(self, secret: str, now: datetime) -> SignInLink:
        """Use a link (once): :class:`Unauthorized` saying why when it cannot be used. A
        secret no link has is refused on a read: a flood of guesses takes no write lock."""
        unknown = Unauthorized("this sign-in link is not valid; make a new one with "
                               "`clauderon web`")
        if self._by_secret("auth_links", secret) is None:
            raise unknown
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM auth_links WHERE secret_hash = ?",
                               (digest(secret),)).fetchone()
            if row is None or not same_digest(secret, row["secret_hash"]):
                raise unknown
            link = _link(row)
            if link.used_at is not None:
                raise Unauthorized("this sign-in link was used already; each works once: "
                                   "make a new one with `clauderon web`")
            if now >= link.expires_at:
                raise Unauthorized("this sign-in link expired (links last 5 minutes); make a "
                                   "new one with `clauderon web`")
            conn.execute("UPDATE auth_links SET used_at = ? WHERE id = ? AND used_at IS NULL",
                         (now.isoformat(), link.id))
        return link

    # --- browser sessions -----------------------------------------------------------
    def create_session(self, *, method: Method, label: str, now: datetime,
                       passkey_id: str | None = None, replacing: str | None = None
                       ) -> tuple[BrowserSession, str]:
        """A new session and its cookie secret; ``replacing`` (the browser's previous
        session, if any) ends in the same transaction: a sign-in always rotates."""
        secret = new_secret()
        session = BrowserSession(id=new_id(Kind.SESSION), method=method, passkey_id=passkey_id,
                                 label=label, created_at=now, last_seen_at=now)
        with self.store.transaction() as conn:
            self._purge(conn, now)
            if replacing:
                conn.execute("DELETE FROM auth_sessions WHERE id = ?", (replacing,))
            conn.execute("INSERT INTO auth_sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (session.id, digest(secret), str(method), passkey_id, label,
                          now.isoformat(), now.isoformat()))
        return session, secret

    def session_by_secret(self, secret: str, now: datetime) -> BrowserSession | None:
        row = self._by_secret("auth_sessions", secret)
        session = None if row is None else _session(row)
        return None if session is None or session.expired(now) else session

    def touch_session(self, session_id: str, now: datetime) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE auth_sessions SET last_seen_at = ? WHERE id = ?",
                         (now.isoformat(), session_id))

    def end_session(self, session_id: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM auth_sessions WHERE id = ?", (session_id,))

    # --- passkeys -------------------------------------------------------------------
    def add_passkey(self, *, credential_id: str, public_key: bytes, sign_count: int,
                    rp_id: str, name: str, backed_up: bool, now: datetime) -> Passkey:
        key = Passkey(id=new_id(Kind.PASSKEY), credential_id=credential_id,
                      public_key=public_key, sign_count=sign_count, rp_id=rp_id, name=name,
                      backed_up=backed_up, created_at=now, last_used_at=None)
        with self.store.transaction() as conn:
            try:
                conn.execute("INSERT INTO auth_passkeys VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                             (key.id, credential_id, public_key, sign_count, rp_id, name,
                              int(backed_up), now.isoformat()))
            except sqlite3.IntegrityError as exc:
                raise Conflict("this passkey is registered already") from exc
        return key

    def passkey_by_credential(self, credential_id: str) -> Passkey | None:
        rows = self.store.rows("SELECT * FROM auth_passkeys WHERE credential_id = ?",
                               (credential_id,))
        return _passkey(rows[0]) if rows else None

    def passkeys(self, rp_id: str | None = None) -> list[Passkey]:
        keys = map(_passkey, self.store.rows("SELECT * FROM auth_passkeys ORDER BY created_at"))
        return [k for k in keys if rp_id is None or k.rp_id == rp_id]

    def passkey_used(self, passkey_id: str, sign_count: int, now: datetime) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE auth_passkeys SET sign_count = ?, last_used_at = ? "
                         "WHERE id = ?", (sign_count, now.isoformat(), passkey_id))

    # --- API tokens -----------------------------------------------------------------
    def create_token(self, *, scope: Scope, name: str, now: datetime) -> tuple[ApiToken, str]:
        secret = new_secret(TOKEN_PREFIX)
        token = ApiToken(id=new_id(Kind.TOKEN), scope=scope, name=name, created_at=now,
                         last_used_at=None)
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO auth_tokens VALUES (?, ?, ?, ?, ?, NULL)",
                         (token.id, digest(secret), str(scope), name, now.isoformat()))
        return token, secret

    def token_by_secret(self, secret: str) -> ApiToken | None:
        row = self._by_secret("auth_tokens", secret)
        return None if row is None else _token(row)

    def token_used(self, token_id: str, now: datetime) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE auth_tokens SET last_used_at = ? WHERE id = ?",
                         (now.isoformat(), token_id))

    # --- WebAuthn ceremonies ----------------------------------------------------------
    def put_challenge(self, *, kind: str, challenge: bytes, rp_id: str, origin: str,
                      session_id: str | None, now: datetime) -> Challenge:
        pending = Challenge(id=new_secret(), kind=kind, challenge=challenge, rp_id=rp_id,
                            origin=origin, session_id=session_id,
                            expires_at=now + CHALLENGE_LIFETIME)
        with self.store.transaction() as conn:
            self._purge(conn, now)
            conn.execute("INSERT INTO auth_challenges VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (pending.id, kind, challenge, rp_id, origin, session_id,
                          pending.expires_at.isoformat()))
        return pending

    def answer_login(self, token: str, expires_at: datetime, now: datetime) -> None:
        """Record a passkey sign-in's ceremony (its token, :func:`appliance.auth.seal_login`)
        as answered, once its answer verified: :class:`Unauthorized` when it was answered
        already (a replayed answer). Kept until the ceremony would have expired."""
        with self.store.transaction() as conn:
            self._purge(conn, now)
            try:
                conn.execute("INSERT INTO auth_challenges VALUES (?, ?, x'', '', '', NULL, ?)",
                             (digest(token), ANSWERED, expires_at.isoformat()))
            except sqlite3.IntegrityError as exc:
                raise Unauthorized("this passkey request was answered already; start "
                                   "again") from exc

    def take_challenge(self, challenge_id: str, kind: str, now: datetime) -> Challenge:
        """The pending ceremony, removed (a challenge answers once)."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM auth_challenges WHERE id = ? AND kind = ?",
                               (challenge_id, kind)).fetchone()
            conn.execute("DELETE FROM auth_challenges WHERE id = ?", (challenge_id,))
        if row is None:
            raise Unauthorized("this passkey request is unknown or was answered already; "
                               "start again")
        pending = Challenge(id=row["id"], kind=row["kind"], challenge=bytes(row["challenge"]),
                            rp_id=row["rp_id"], origin=row["origin"],
                            session_id=row["session_id"],
                            expires_at=datetime.fromisoformat(row["expires_at"]))
        if now >= pending.expires_at:
            raise Unauthorized("the passkey request expired; start again")
        return pending

    # --- lists and revocation ---------------------------------------------------------
    def records(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        with self.store.reading() as conn:
            sessions = [_session(r) for r in conn.execute(
                "SELECT * FROM auth_sessions ORDER BY created_at").fetchall()]
            tokens = [_token(r) for r in conn.execute(
                "SELECT * FROM auth_tokens ORDER BY created_at").fetchall()]
        return {"sessions": [s.to_json() for s in sessions if not s.expired(now)],
                "passkeys": [k.to_json() for k in self.passkeys()],
                "tokens": [t.to_json() for t in tokens]}

    def revoke(self, record_id: str) -> Kind:
        """Remove a session, passkey or token by id. A passkey takes with it the browser
        sessions it signed in."""
        kind = kind_of(record_id)
        table = {Kind.SESSION: "auth_sessions", Kind.PASSKEY: "auth_passkeys",
                 Kind.TOKEN: "auth_tokens", Kind.LINK: "auth_links"}.get(kind) if kind else None
        if table is None:
            raise NotFound(f"{record_id!r} is not a record id (see `clauderon auth list`)")
        with self.store.transaction() as conn:
            gone = conn.execute(f"DELETE FROM {table} WHERE id = ?", (record_id,)).rowcount
            if kind is Kind.PASSKEY:
                conn.execute("DELETE FROM auth_sessions WHERE passkey_id = ?", (record_id,))
        if not gone:
            raise NotFound(f"no {kind} with id {record_id!r} (see `clauderon auth list`)")
        log.info("revoked %s %s", kind, record_id)
        assert kind is not None
        return kind
