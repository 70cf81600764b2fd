"""How a host name reads to a person deciding on it. Pure.

An agent chooses the names a person is asked about (a held request, a learned host, a
honeytoken alert), and may choose one that reads as another: a long name that starts with
``api.github.com.`` and ends elsewhere, or a name in another script that looks like a known
one (``xn--gthub-n2e.com`` is drawn as ``github.com`` with a Cyrillic i). Every view shows,
beside the name as the proxy connects to it, :func:`reading`'s facts: the ``site`` (the
domain the name belongs to, the part nobody but its owner names), the name as a browser
draws it when it has ``xn--`` labels (but those written right to left, which reorder what
is drawn around them: shown as spelled), and a warning when a label mixes scripts or its
``xn--`` form does not decode.

The site is the last two labels, or the last three under a two-letter country code whose
second level is a common registry one (``example.co.uk``): an approximation of the Public
Suffix List, which errs towards showing more of the name, never less.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass

#: Second levels under which country registries sell names (``co.uk``, ``com.au``, ...).
_SECOND_LEVELS = frozenset({"ac", "co", "com", "edu", "go", "gov", "ne", "net", "or", "org"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    site: str
    #: The name as a browser draws it, when a label is ``xn--``; else None.
    unicode: str | None
    #: Why the name may read as another, or None.
    lookalike: str | None


def site(host: str) -> str:
    """The domain ``host`` belongs to (an IP literal is its own)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    take = 3 if len(labels) >= 3 and len(labels[-1]) == 2 \
        and labels[-2] in _SECOND_LEVELS else 2
    return ".".join(labels[-take:])


def _script(ch: str) -> str | None:
    """The script of a letter (``LATIN``, ``CYRILLIC``, ...), None for a digit or a sign."""
    if not ch.isalpha():
        return None
    return unicodedata.name(ch, "UNKNOWN").split(" ")[0]


def _drawable(ch: str) -> bool:
    """A letter, digit, combining mark or hyphen: nothing that draws as nothing (a zero
    width joiner, a bidi control) or as a separator."""
    return ch == "-" or unicodedata.category(ch)[0] in "LMN"


#: The bidi classes of right-to-left letters and of the digits drawn among them.
_RIGHT_TO_LEFT = frozenset({"R", "AL", "AN"})


def reading(host: str) -> Reading:
    labels = host.split(".")
    if not any(label.startswith("xn--") for label in labels):
        return Reading(site=site(host), unicode=None, lookalike=None)
    drawn: list[str] = []
    warning: str | None = None
    for label in labels:
        if not label.startswith("xn--"):
            drawn.append(label)
            continue
        try:
            text = label[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            text = ""
        if text.isascii() or not all(_drawable(ch) for ch in text):
            # Not a name a registry gives out (an empty or ASCII decoding, or a character
            # that draws as nothing or reorders the text): it is shown as it is spelled.
            drawn.append(label)
            warning = warning or f"{label} is not a valid international name"
            continue
        if any(unicodedata.bidirectional(ch) in _RIGHT_TO_LEFT for ch in text):
            # Drawn, two such labels swap places and the dots between them move: the
            # site's label reads first. Shown as spelled, in the order the name has.
            drawn.append(label)
            warning = warning or (f"{label} is written right to left, which reorders the "
                                  "name as drawn: read it as spelled")
            continue
        drawn.append(text)
        scripts = sorted({s for s in map(_script, text) if s is not None})
        if len(scripts) > 1 and warning is None:
            warning = f"{text} mixes {' and '.join(s.title() for s in scripts)} letters"
    unicode = ".".join(drawn)
    return Reading(site=site(host), unicode=unicode,
                   lookalike=warning or "letters outside ASCII can look like others")
