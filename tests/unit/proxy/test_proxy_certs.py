"""The CA on disk and the leaf certificates minted from it."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import trio
import trio.testing

from proxy.certs import CertStore, load_or_create_ca


def test_ca_created_once_then_reloaded(tmp_path: Path) -> None:
    cert, key = tmp_path / "proxy-ca.pem", tmp_path / "proxy-ca-key.pem"
    first = load_or_create_ca(cert, key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pem = cert.read_bytes()
    second = load_or_create_ca(cert, key)
    assert cert.read_bytes() == pem
    assert second.cert_pem.bytes() == first.cert_pem.bytes()


def test_leaf_cache_is_bounded_and_reused(tmp_path: Path) -> None:
    store = CertStore(load_or_create_ca(tmp_path / "c.pem", tmp_path / "k.pem"), cache_size=2)
    a = store.context_for("a.example")
    assert store.context_for("A.example") is a
    store.context_for("b.example")
    store.context_for("c.example")
    assert len(store) == 2
    assert store.context_for("a.example") is not a


async def test_a_client_trusting_the_ca_accepts_the_leaf(tmp_path: Path) -> None:
    store = CertStore(load_or_create_ca(tmp_path / "c.pem", tmp_path / "k.pem"))
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
    left, right = trio.testing.memory_stream_pair()
    server = trio.SSLStream(left, store.context_for("api.github.com"), server_side=True)
    client = trio.SSLStream(right, client_ctx, server_hostname="api.github.com")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            nursery.start_soon(client.do_handshake)
    assert client.selected_alpn_protocol() in (None, "http/1.1")
