"""The proxy's certificate authority and the leaf certificates it mints per host.

The CA is created once with trustme and saved in ``CLAUDERON_HOME`` as ``proxy-ca.pem``
(mounted read-only into containers, so their clients trust us) and ``proxy-ca-key.pem``
(0600, never mounted). Later starts reload the same pair, so a client that trusted the CA
keeps working across restarts. The server (``server.py``) asks :meth:`CertStore.context_for`
for a server-side ``SSLContext`` each time it terminates TLS for a CONNECT target; contexts
are minted on demand and kept in a bounded LRU cache.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import trustme

log = logging.getLogger(__name__)

# Browsers and Apple platforms refuse leaf certificates valid for more than 398 days.
LEAF_VALIDITY = dt.timedelta(days=365)
# Clocks in containers and VMs drift; a not-before in the past avoids "not yet valid".
CLOCK_SKEW = dt.timedelta(days=1)
# Mint a fresh leaf well before the cached one could expire in a long-running process.
LEAF_REFRESH_AFTER = dt.timedelta(days=30)
DEFAULT_CACHE_SIZE = 1000


def load_or_create_ca(cert_path: Path, key_path: Path) -> trustme.CA:
    """Reload the CA from its PEM files, or create and save it on first start."""
    if cert_path.exists() and key_path.exists():
        return trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
    ca = trustme.CA(organization_name="Clauderon", organization_unit_name="Clauderon Proxy CA")
    # The key is written 0600 from the first byte (O_CREAT mode), then moved in place.
    tmp_key = key_path.with_name(key_path.name + ".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(ca.private_key_pem.bytes())
    os.replace(tmp_key, key_path)
    tmp_cert = cert_path.with_name(cert_path.name + ".tmp")
    tmp_cert.write_bytes(ca.cert_pem.bytes())
    os.chmod(tmp_cert, 0o644)
    os.replace(tmp_cert, cert_path)
    log.info("created the proxy CA at %s", cert_path)
    return ca


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    context: ssl.SSLContext
    minted: dt.datetime


class CertStore:
    """Server-side TLS contexts per host, minted from the CA, in a bounded LRU cache."""

    def __init__(self, ca: trustme.CA, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._ca = ca
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._size = cache_size
        # Contexts may be minted from worker threads (minting costs a key generation).
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def context_for(self, host: str) -> ssl.SSLContext:
        host = host.lower()
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            entry = self._cache.get(host)
            if entry is not None and now - entry.minted < LEAF_REFRESH_AFTER:
                self._cache.move_to_end(host)
                return entry.context
        context = self._mint(host, now)
        with self._lock:
            self._cache[host] = _Entry(context=context, minted=now)
            self._cache.move_to_end(host)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return context

    def _mint(self, host: str, now: dt.datetime) -> ssl.SSLContext:
        leaf = self._ca.issue_cert(
            host,
            common_name=host[:64],
            not_before=now - CLOCK_SKEW,
            not_after=now + LEAF_VALIDITY,
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # We speak HTTP/1.1 only; offering h2 would make clients send frames h11 cannot read.
        context.set_alpn_protocols(["http/1.1"])
        leaf.configure_cert(context)
        return context
