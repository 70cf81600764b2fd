"""Per-session secrets that are never stored in clear.

Each session has two bearer secrets: the proxy token (its ``HTTPS_PROXY`` credentials) and
the hook token (its ``/api/hooks`` credentials). Both are derived from the appliance's
instance key with HMAC, so the reconciler can recreate a container with the same values
after any restart, while the database only ever holds their SHA-256 digests. The instance
key lives in ``CLAUDERON_HOME/instance.key`` (0600) and is never mounted into a container.

The appliance has a proxy identity of its own, :data:`APPLIANCE_ID` with
:func:`appliance_token`: its title call, and what it does on a person's behalf (push a
session branch, read and merge its pull request), go through the proxy like an agent's
request — the credential injected there, audited — under its own name, not a session's.
Session ids are UUIDs, so no session's token can ever equal it, and it exists only in the
memory of the appliance's own processes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from enum import StrEnum
from pathlib import Path

#: The identity the appliance itself uses at its proxy (the title call, pushes and pull
#: requests): its proxy token is derived like a session's, so the proxy can check it and
#: audit its requests under this name; session ids are UUIDs, so none can be mistaken for it.
APPLIANCE_ID = "appliance"


class Purpose(StrEnum):
    PROXY = "proxy"
    HOOK = "hook"


def load_or_create_instance_key(path: Path) -> bytes:
    """Read the instance key, creating it (0600, atomically) on first use."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")  # one per creator
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    try:
        # link() fails if another process won the race; then we use its key.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def derive_token(key: bytes, session_id: str, purpose: Purpose) -> str:
    """The session's secret for ``purpose``: stable for the life of the instance key."""
    return hmac.new(key, f"{purpose}:{session_id}".encode(), hashlib.sha256).hexdigest()


def appliance_token(key: bytes) -> str:
    """The appliance's own proxy token (see the module's docstring)."""
    return derive_token(key, APPLIANCE_ID, Purpose.PROXY)


def hash_token(token: str) -> str:
    """What the database stores, and what a presented token is compared against."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(presented: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(presented), stored_hash)
