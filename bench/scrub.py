"""Benchmark: what masking the credential costs the proxy's one loop, per kind of answer.

Run: ``.venv/bin/python bench/scrub.py [-n 5] [--mib 8]``. Feeds the same answers in 64 KiB
chunks to :class:`proxy.scrub.Scrubber` (the masking every credentialed answer goes
through) as the proxy does: a model's event stream (JSON lines dense with ``\\n``, ``\\"``
and ``\\u00e9``), an HTML error page, plain text, an API's JSON listing (hashes and paths,
long runs of a spelling's bytes), and a git pack (random bytes). Each is
masked with the escapes pass (what a text answer gets: the credential re-encoded is found
too) and without it (the credential's own bytes: the baseline, and what a body of data
gets, ``scrub.escapable``), in alternation, ``-n`` rounds; prints MB/s of this process's CPU
time (best round: what the loop pays, whatever else the machine runs) and the ratio of the
two. Pure CPU, no network. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path[:1]:  # run as `python bench/scrub.py` (its proxy.py is not ours)
    sys.path.insert(0, str(REPO))

from proxy.bodykind import escapable  # noqa: E402
from proxy.scrub import Scrubber  # noqa: E402

SECRETS = (b"ghp_REALGITHUBCANARY0123456789",
           b"eC1hY2Nlc3MtdG9rZW46Z2hwX1JFQUxHSVRIVUJDQU5BUlkwMTIzNDU2Nzg5")
CHUNK = 64 * 1024


def answers(size: int) -> dict[str, tuple[bytes, bytes]]:
    """Each kind of answer, ``size`` bytes, and the ``Content-Type`` it comes with."""
    def fill(line: bytes) -> bytes:
        return (line * (size // len(line) + 1))[:size]
    return {
        "event stream": (fill(b'data: {"type":"content_block_delta","delta":{"type":'
                              b'"text_delta","text":"caf\\u00e9 \\"q\\" ok\\n"}}\n\n'),
                         b"text/event-stream"),
        "HTML page": (fill(b"<p>Bad credentials &amp; more: see "
                           b"<a href=\"/docs?x=1&amp;y=%2F\">docs</a></p>\n"),
                      b"text/html; charset=utf-8"),
        "plain text": (fill(b"the quick brown fox jumps over the lazy dog 0123456789\n"),
                       b"text/plain"),
        # Hashes and paths: runs of a spelling's bytes as long as a secret, so every chunk
        # is searched form by form and read for escapes (what an API's listing costs).
        "API listing": (fill(b'{"sha":"6dcb09b5b57875f334f61aebed695e2e4193db5e","url":'
                             b'"https://api.example/repos/octocat/hello_world/commits/'
                             b'6dcb09b5b57875f334f61aebed695e2e4193db5e","message":'
                             b'"Fix all the bugs"},\n'),
                        b"application/json"),
        "git pack": (os.urandom(size), b"application/x-git-upload-pack-result"),
    }


def rate(body: bytes, escapes: bool) -> float:
    """MB/s of one pass over ``body``, by this process's CPU time."""
    scrub = Scrubber(SECRETS)
    scrub.escapes = escapes
    start = time.process_time()
    for i in range(0, len(body), CHUNK):
        scrub.feed(body[i:i + CHUNK])
    scrub.finish()
    return len(body) / (time.process_time() - start) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="rounds (best kept)")
    parser.add_argument("--mib", type=int, default=8, help="MiB per answer")
    args = parser.parse_args()
    print(f"{'answer':<14} {'gets':<16} {'literal MB/s':>13} {'escapes MB/s':>13} "
          f"{'cost':>6}")
    for name, (body, kind) in answers(args.mib << 20).items():
        literal: list[float] = []
        escaped: list[float] = []
        for _ in range(args.n):  # alternated, so a busy moment hits both
            literal.append(rate(body, escapes=False))
            escaped.append(rate(body, escapes=True))
        gets = "escapes pass" if escapable([(b"content-type", kind)]) else "literal only"
        lit, esc = max(literal), max(escaped)
        print(f"{name:<14} {gets:<16} {lit:13.1f} {esc:13.1f} {lit / esc:5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
