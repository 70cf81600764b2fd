"""The fake upstream for ``bench/proxy.py``: nginx with a trustme certificate, on loopback.

nginx serves the fast endpoints (``/small``: 200 bytes, ``/1mib``: 1 MiB, ``/upload``:
accepts a body) so that the upstream is never the bottleneck. ``/sse`` is passed (without
buffering) to a small threaded Server-Sent Events server, because nginx cannot pace events
by itself: ``/sse?n=N&gap_ms=G`` sends its first event at once, then N-1 more G ms apart.
The hop through nginx is the same for every variant measured, so it cancels out of the
ratios. Everything listens on 127.0.0.1 and lives in one temporary folder.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

#: The host the clients ask for; the certificate also names 127.0.0.1.
BENCH_HOST = "api.anthropic.com"
SMALL_BODY = b"x" * 200
MIB = 1024 * 1024
#: A Messages API answer with its usage (``/v1/messages`` is metered, ``/v1/plain`` not).
MODEL_ANSWER = ('{"id":"msg_bench","type":"message","role":"assistant","model":'
                '"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"usage":'
                '{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":0}}')


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    port: int
    ca_pem: Path  # the trustme CA that signed the upstream's certificate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


class _SseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        count = int(query.get("n", ["5"])[0])
        gap = int(query.get("gap_ms", ["50"])[0]) / 1000
        self._events([f"event: tick\ndata: {i}\n\n" for i in range(count)], gap,
                     ("Cache-Control", "no-cache"))

    def do_POST(self) -> None:
        """A model-like stream (``/sse/v1/messages``: the meter reads it; any other path
        the same bytes unmetered): usage in the first and the last event."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        start = ('{"type":"message_start","message":{"model":"claude-sonnet-4-5",'
                 '"usage":{"input_tokens":10,"output_tokens":1}}}')
        delta = '{"type":"content_block_delta","delta":{"type":"text_delta","text":"tick"}}'
        end = '{"type":"message_delta","usage":{"output_tokens":5}}'
        self._events([f"event: x\ndata: {doc}\n\n" for doc in (start, delta, delta, delta, end)],
                     0.05)

    def _events(self, events: list[str], gap: float, *headers: tuple[str, str]) -> None:
        """``events`` as a chunked event stream, ``gap`` seconds apart."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i, event in enumerate(events):
                if i:
                    time.sleep(gap)
                data = event.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _SseServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def _run_sse_server(port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with _SseServer(("127.0.0.1", port), _SseHandler) as server:
        server.serve_forever(poll_interval=0.2)


_NGINX_CONF = """
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream sse {{ server 127.0.0.1:{sse_port}; keepalive 64; }}
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    sendfile on;
    tcp_nodelay on;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {host} 127.0.0.1;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        root {dir}/www;
        location = /small {{ default_type text/plain; return 200 "{small}"; }}
        location = /1mib {{ default_type application/octet-stream; }}
        location = /upload {{ client_max_body_size 4m; return 200 "ok"; }}
        location ~ ^/v1/(messages|plain)$ {{ default_type application/json;
            return 200 '{model_answer}'; }}
        location /sse {{
            proxy_pass http://sse;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


class FakeUpstream:
    """nginx + the SSE server, started and stopped as a pair (a context manager)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "upstream"
        self._nginx: subprocess.Popen[bytes] | None = None
        self._sse: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> Upstream:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError("nginx not found: run `sh bench/setup.sh` (installs nginx-light)")
        self.dir.mkdir(parents=True)
        (self.dir / "www").mkdir()
        (self.dir / "www" / "1mib").write_bytes(os.urandom(MIB))
        ca = trustme.CA()
        leaf = ca.issue_cert(BENCH_HOST, "127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        leaf.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        sse_port, port = free_port(), free_port()
        self._sse = multiprocessing.get_context("fork").Process(
            target=_run_sse_server, args=(sse_port,), daemon=True
        )
        self._sse.start()
        conf = _NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            dir=self.dir,
            port=port,
            host=BENCH_HOST,
            small=SMALL_BODY.decode(),
            model_answer=MODEL_ANSWER,
            sse_port=sse_port,
        )
        (self.dir / "nginx.conf").write_text(conf)
        self._nginx = subprocess.Popen(
            [nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for_port(sse_port, 10)
        wait_for_port(port, 10, self._nginx)
        return Upstream(port=port, ca_pem=self.dir / "ca.pem")

    def __exit__(self, *exc: object) -> None:
        if self._nginx is not None:
            self._nginx.terminate()
            try:
                self._nginx.wait(5)
            except subprocess.TimeoutExpired:
                self._nginx.kill()
                self._nginx.wait()
        if self._sse is not None:
            self._sse.terminate()
            self._sse.join(5)
