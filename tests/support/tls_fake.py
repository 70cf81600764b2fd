"""A threaded HTTPS server on 127.0.0.1 with a CA of its own, the base of the fakes that
stand in for a remote service behind the proxy's ``[upstreams]`` overrides
(``fake_github.py``, ``fake_models.py``). ``with Fake(...) as fake:`` serves."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import trustme


class TlsFake:
    #: The hosts :meth:`proxy_toml` sends here unless told others.
    HOSTS: tuple[str, ...] = ()

    def _listen(self, folder: Path, stem: str, names: tuple[str, ...],
                handler: type[BaseHTTPRequestHandler]) -> None:
        """Bind a server for ``names`` (and 127.0.0.1) whose handler reads ``fake``."""
        self.ca = trustme.CA()
        self.ca_path = folder / f"{stem}-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", *names).configure_cert(ctx)
        # No Nagle: a handler writes its head and its body apart, and the second write
        # would wait for the peer's delayed ACK (40 ms a request) as no real API makes it.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), type(
            "Handler", (handler,), {"fake": self, "disable_nagle_algorithm": True}))
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def proxy_toml(self, *hosts: str) -> str:
        """A proxy.toml that sends ``hosts`` (default :attr:`HOSTS`) here, trusting this
        fake's CA, and denies every other host."""
        lines = "".join(f'"{host}" = "{self.url}"\n' for host in hosts or self.HOSTS)
        return (f'deny_unlisted = true\nextra_ca_bundle = "{self.ca_path}"\n[upstreams]\n'
                + lines)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
