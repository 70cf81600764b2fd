"""What one session's audit lines may cost a day, and its refusals past that (pure).

Every request is a line of the audit log, a refused one too, and the shipper archives every
line and never prunes: an agent sending refused requests as fast as it can grows the log
and its archive without bound, until the disk is below the audit reserve and every
session's requests are refused (``refusals.unrecordable``). So the proxy counts the bytes
of each session's lines as it writes them, by UTC day (:meth:`Shares.spend`); once a
session's lines of the day reach ``audit_bytes_per_day`` its requests are refused with a
429 that says why (:meth:`Shares.over`), and are not written one by one: the refusals of
each minute are counted in one summary line for the session (:meth:`Shares.refuse`,
:meth:`Shares.due`), so none is lost and the flood no longer grows the disk. The other
sessions go on; the day after, the session's requests do too. Lines no session's
credentials prove count by the address they come from (:meth:`Shares.unproven`): past the
bound they are answered as before (407, 400) and counted the same way. One share for them
all let one agent sending wrong tokens leave every other container's only counted; each
container has an address of its own on the sessions' network and, with no capability to
configure it, cannot send from another (nor complete a TCP handshake from a forged one).

Memory: a count per session that wrote today (sessions are the appliance's own, each
authenticated), per address of unproven lines today (:data:`UNPROVEN_ADDRESSES` at most,
the later ones counted together), and per each of those refused this minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The share of the lines no session's credentials prove (a wrong or missing proxy token, a
#: request too malformed to read): one for them all, so a flood of those fills no disk either.
UNPROVEN = "(unproven)"
#: Addresses whose unproven lines have a share each a day; the lines of any further
#: address share one, :data:`OTHERS` (the appliance's sessions are far fewer).
UNPROVEN_ADDRESSES = 1024
OTHERS = "others"
#: A honeytoken's line is the evidence of a leak: written in full past the session's share,
#: until its lines of the day reach this many shares (some 100,000 such lines at the shipped
#: bound), so a flood of leaks fills no disk either (:meth:`Shares.evidence`).
EVIDENCE_SHARES = 2
#: Bytes of one session's audit lines a day past which its requests are refused: some
#: 100,000 model requests' lines, far above an agent's day of work; a flood of refused
#: requests reaches it in a minute or two (0 in ``proxy.toml``: no bound).
AUDIT_BYTES_PER_DAY = 256 * 2**20


@dataclass(slots=True)
class Shares:
    """Bytes of each session's lines this day, and its refusals this minute."""

    day: str = ""
    spent: dict[str, int] = field(default_factory=dict)
    minute: str = ""
    refused: dict[str, int] = field(default_factory=dict)
    addresses: set[str] = field(default_factory=set)

    def spend(self, session: str, size: int, day: str) -> None:
        """``session`` wrote a line of ``size`` bytes on ``day`` (``YYYY-MM-DD``, the day it
        is written: an exchange's line is dated by its start, and one begun before midnight
        would start the count again). An earlier day (a clock set back) counts with the
        day's: only a later one starts the count again."""
        self._turn(day)
        self.spent[session] = self.spent.get(session, 0) + size

    def unproven(self, address: str, day: str, most: int = UNPROVEN_ADDRESSES) -> str:
        """The share of the lines no session proves from ``address`` on ``day``: its own
        (``(unproven) ADDRESS``) for the first ``most`` addresses of the day, one for the
        rest (``(unproven) others``)."""
        self._turn(day)
        if address not in self.addresses:
            if len(self.addresses) >= most:
                return f"{UNPROVEN} {OTHERS}"
            self.addresses.add(address)
        return f"{UNPROVEN} {address}"

    def _turn(self, day: str) -> None:
        if day > self.day:
            self.day, self.spent, self.addresses = day, {}, set()

    def over(self, session: str, bound: int, day: str) -> bool:
        """``session``'s lines of ``day`` reached ``bound`` (0: no bound)."""
        return bound > 0 and day == self.day and self.spent.get(session, 0) >= bound

    def evidence(self, session: str, bound: int, day: str) -> bool:
        """A honeytoken's line of ``session`` on ``day`` is still written in full, its share
        spent or not: its lines have not reached :data:`EVIDENCE_SHARES` of ``bound``."""
        return not self.over(session, bound * EVIDENCE_SHARES, day)

    def refuse(self, session: str, minute: str) -> list[tuple[str, str, int]]:
        """Count one refusal of ``session`` in ``minute``; the summaries due (see :meth:`due`)."""
        due = self.due(minute)
        self.refused[session] = self.refused.get(session, 0) + 1
        return due

    def due(self, minute: str | None) -> list[tuple[str, str, int]]:
        """The summaries of the minute before ``minute`` (session, minute, refusals), each
        once; ``None``: the open minute's too (the proxy is stopping)."""
        if minute is not None and minute == self.minute:
            return []
        out = [(session, self.minute, n) for session, n in sorted(self.refused.items())]
        self.refused.clear()
        self.minute = minute or ""
        return out
