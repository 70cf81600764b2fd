"""Egress policy: where a session's requests may go, per session, decided purely.

Modes (:class:`EgressMode`): ``open`` passes everything (the behaviour before policies);
``learn`` passes everything and records each new host in the session's list; ``ask`` holds a
request to an unlisted host while a person allows or denies it from any UI (denied when
nobody answers in time); ``locked`` passes listed hosts only. The model hosts always pass:
an agent that cannot reach its model cannot even report the refusal.

Lists: each session's own entries, plus global ones (``[egress] allow``/``deny`` in
``config.toml`` and entries made from a UI), each a host or ``*.domain``, allowed or denied.
A denial wins over an allowance, a session's entry over a global one. :func:`decide` is
the whole rule; the proxy (``proxy/controls.py``) holds requests and records what it learns,
and every decision goes to the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance.errors import ConfigError, InvalidInput, refuse_unknown

DEFAULT_ASK_SECONDS = 60.0
MAX_ASK_SECONDS = 3600.0


class EgressMode(StrEnum):
    OPEN = "open"
    LEARN = "learn"
    ASK = "ask"
    LOCKED = "locked"


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Decision(StrEnum):
    PASS = "pass"  # noqa: S105 - a decision  # listed, open mode, or a model host
    LEARN = "learn"  # pass, and record the host
    ASK = "ask"  # hold it while a person decides
    DENY = "deny"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostEntry:
    host: str
    verdict: Verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressDefaults:
    mode: EgressMode = EgressMode.OPEN
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    ask_seconds: float = DEFAULT_ASK_SECONDS


_PATTERN = re.compile(r"(\*\.)?(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
                      r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*")


def host_pattern(raw: object, where: str, *, error: type[Exception] = InvalidInput) -> str:
    """A host name or ``*.domain``, lowercased; anything else is refused saying so."""
    text = str(raw).strip().lower().rstrip(".") if isinstance(raw, str) else ""
    if not _PATTERN.fullmatch(text):
        raise error(f"{where}: {str(raw)[:80]!r} is not a host name or *.domain (no scheme, "
                    "port or path: api.example.com, *.example.com)")
    return text


def matches(pattern: str, host: str) -> bool:
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _verdict(entries: Iterable[HostEntry], host: str) -> Verdict | None:
    found = [e.verdict for e in entries if matches(e.host, host)]
    if Verdict.DENY in found:
        return Verdict.DENY
    return Verdict.ALLOW if found else None


def decide(mode: EgressMode, host: str, *, model_host: bool,
           session: Iterable[HostEntry], shared: Iterable[HostEntry]) -> Decision:
    """What to do with a request of a session in ``mode`` to ``host``."""
    if model_host or mode is EgressMode.OPEN:
        return Decision.PASS
    verdict = _verdict(session, host) or _verdict(shared, host)
    if verdict is Verdict.DENY:
        return Decision.DENY
    if verdict is Verdict.ALLOW:
        return Decision.PASS
    return {EgressMode.LEARN: Decision.LEARN, EgressMode.ASK: Decision.ASK,
            EgressMode.LOCKED: Decision.DENY}[mode]


def parse_mode(raw: object, where: str, *, error: type[Exception] = InvalidInput) -> EgressMode:
    try:
        return EgressMode(str(raw))
    except ValueError:
        raise error(f"{where}: mode {str(raw)[:40]!r} is not one of "
                    f"{', '.join(m.value for m in EgressMode)}") from None


def parse_egress_defaults(doc: object, origin: str) -> EgressDefaults:
    """``[egress]`` of ``config.toml``: mode, allow, deny, ask_timeout_seconds."""
    where = f"{origin} [egress]"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where} must be a table")
    refuse_unknown(doc, ("mode", "allow", "deny", "ask_timeout_seconds"), where)
    values: dict[str, Any] = {}
    if "mode" in doc:
        values["mode"] = parse_mode(doc["mode"], where, error=ConfigError)
    for key in ("allow", "deny"):
        if key in doc:
            items = doc[key]
            if not isinstance(items, list):
                raise ConfigError(f"{where} {key} must be a list of host names")
            values[key] = tuple(host_pattern(h, f"{where} {key}", error=ConfigError)
                                for h in items)
    if "ask_timeout_seconds" in doc:
        values["ask_seconds"] = ask_seconds(doc["ask_timeout_seconds"], where,
                                            error=ConfigError)
    return EgressDefaults(**values)


def ask_seconds(raw: object, where: str, *, error: type[Exception] = InvalidInput) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) \
            or not 0 < raw <= MAX_ASK_SECONDS:
        raise error(f"{where}: ask_timeout_seconds must be a number of seconds above 0 and "
                    f"at most {MAX_ASK_SECONDS:g} (it is {raw!r})")
    return float(raw)


def config_entries(defaults: EgressDefaults) -> tuple[HostEntry, ...]:
    return (*(HostEntry(host=h, verdict=Verdict.DENY) for h in defaults.deny),
            *(HostEntry(host=h, verdict=Verdict.ALLOW) for h in defaults.allow))


def mode_of(raw: str | None, defaults: EgressDefaults) -> EgressMode:
    """A session's mode: its own, or the configured default."""
    return EgressMode(raw) if raw else defaults.mode


def asks_to_forget(asks: Iterable[tuple[int, str | None, str]], now: str,
                   keep: int) -> list[int]:
    """Which of a session's asks go: ``(id, decision, expires_at)`` each, ``now`` and the
    expiries ISO stamps. An open ask (undecided, not yet expired) stays, and so do the
    ``keep`` newest closed ones (a request sharing an ask reads its decision from the row a
    moment after it was made); the older closed ones go, oldest first. An agent asking
    again and again kept one row per ask for ever."""
    closed = sorted((ident for ident, decision, expires in asks
                     if decision is not None or expires <= now), reverse=True)
    return sorted(closed[max(0, keep):])
