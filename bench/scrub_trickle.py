"""Benchmark: what the masking's worst answer costs the proxy's one loop, trickled.

Run: ``.venv/bin/python bench/scrub_trickle.py [--kib 64]``. An agent whose credentialed
request an upstream echoes chooses the answer; an upstream that sends it in one-byte chunks
(chunked framing: an event a byte) makes :class:`proxy.scrub.Scrubber` read each byte on its
own. The hostile answer is the credential's longest form begun and escaped three times
(``&amp;amp;#x…;`` a character, and ``%2525XX``), broken off before its end, over and over:
the longest tail the masking holds back. Each is fed a byte at a time, and in 64 KiB chunks,
beside plain text of the same size; prints MB/s of this process's CPU time (what the loop
pays) and how many times the plain text's cost per byte each costs. Pure CPU, no network.
Never asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path[:1]:  # run as `python bench/scrub_trickle.py`
    sys.path.insert(0, str(REPO))

from proxy.scrub import Scrubber  # noqa: E402

SECRETS = (b"ghp_REALGITHUBCANARY0123456789",
           b"eC1hY2Nlc3MtdG9rZW46Z2hwX1JFQUxHSVRIVUJDQU5BUlkwMTIzNDU2Nzg5")


def answers(size: int) -> dict[str, bytes]:
    form = max(Scrubber(SECRETS)._forms, key=len)[:-1]  # the longest, one short

    def fill(unit: bytes) -> bytes:
        return (unit * (size // len(unit) + 1))[:size]
    return {"plain text": fill(b"the quick brown fox jumps over the lazy dog 0123456789\n"),
            "html thrice": fill(b"".join(b"&amp;amp;#x%08x;" % c for c in form) + b"!"),
            "url thrice": fill(b"".join(b"%%2525%02x" % c for c in form) + b"!")}


def rate(body: bytes, chunk: int) -> float:
    """MB/s of one pass over ``body`` in ``chunk``-byte chunks, by this process's CPU time."""
    scrub = Scrubber(SECRETS)
    start = time.process_time()
    for i in range(0, len(body), chunk):
        scrub.feed(body[i:i + chunk])
    scrub.finish()
    return len(body) / (time.process_time() - start) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=64, help="KiB per answer")
    args = parser.parse_args()
    bodies = answers(args.kib << 10)
    print(f"{'answer':<12} {'chunk':>6} {'MB/s':>9} {'cost':>7}")
    for chunk in (1, 64 * 1024):
        plain = rate(bodies["plain text"], chunk)
        for name, body in bodies.items():
            got = plain if name == "plain text" else rate(body, chunk)
            print(f"{name:<12} {chunk:>6} {got:9.3f} {plain / got:6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
