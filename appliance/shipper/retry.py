"""How long to wait before trying a failed sink again: capped exponential back-off (pure).

Jitter is passed in (a number in [0, 1)) so the schedule is a plain function of its inputs.
A sink is retried for as long as it takes: the checkpoint does not move meanwhile, so
nothing is lost, and the reader does not read further, so memory stays bounded.
"""

from __future__ import annotations


def backoff(attempt: int, *, base: float = 0.5, cap: float = 60.0, jitter: float = 0.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (0 for the first failure)."""
    delay = min(cap, base * (2.0 ** min(attempt, 32)))
    # Up to a quarter less, so many shippers do not retry in lockstep.
    return max(0.0, delay * (1.0 - 0.25 * jitter))
