"""How a host name an agent chose reads to the person deciding on it (``hostnames.py``)."""

from __future__ import annotations

import pytest

from appliance.hostnames import Reading, reading, site

#: ``github.com`` with a Cyrillic i, as a client sends it.
HOMOGRAPH = "g\u0456thub.com".encode("idna").decode()
#: ``apple.com`` in Cyrillic letters only.
APPLE = "\u0430\u0440\u0440\u04cf\u0435.com"


@pytest.mark.parametrize(("host", "expected"), [
    ("api.github.com", "github.com"),
    ("github.com", "github.com"),
    ("api.github.com.login-" + "x" * 40 + ".evil.example", "evil.example"),
    ("www.example.co.uk", "example.co.uk"),
    ("example.co.uk", "example.co.uk"),
    ("a.b.example.com.au", "example.com.au"),
    ("a.b.co.example", "co.example"),  # ``co`` under a long top level is a name like any
    ("localhost", "localhost"),
    ("10.1.2.3", "10.1.2.3"),
    ("::1", "::1"),
])
def test_the_site_is_the_part_its_owner_names(host: str, expected: str) -> None:
    assert site(host) == expected


@pytest.mark.parametrize(("host", "unicode", "warning"), [
    ("api.github.com", None, None),
    (HOMOGRAPH, "g\u0456thub.com", "g\u0456thub mixes Cyrillic and Latin letters"),
    # Every letter Cyrillic: one script, still not what it looks like.
    (APPLE.encode("idna").decode(), APPLE, "letters outside ASCII can look like others"),
    ("xn--mnchen-3ya.de", "m\u00fcnchen.de", "letters outside ASCII can look like others"),
    # A zero-width joiner or a bidi override in the label: shown as spelled, and why.
    ("xn--" + "git\u200dhub".encode("punycode").decode() + ".com",
     "xn--" + "git\u200dhub".encode("punycode").decode() + ".com", "is not a valid"),
    ("xn--" + "\u202emoc".encode("punycode").decode() + ".example",
     "xn--" + "\u202emoc".encode("punycode").decode() + ".example", "is not a valid"),
    # Right to left (Hebrew, Arabic, Arabic-Indic digits): drawn, the labels swap places.
    ("xn--9dbne9b.xn--9dbodr.test", "xn--9dbne9b.xn--9dbodr.test", "written right to left"),
    ("xn--mgbh0fb.com", "xn--mgbh0fb.com", "written right to left"),
    ("xn--" + "\u0663\u0664".encode("punycode").decode() + ".com",
     "xn--" + "\u0663\u0664".encode("punycode").decode() + ".com", "right to left"),
    ("xn--zzzzzzzzz-.com", "xn--zzzzzzzzz-.com", "is not a valid"),  # decodes to ASCII
    ("xn--99999999999999.com", "xn--99999999999999.com", "is not a valid"),  # no punycode
])
def test_an_international_name_is_drawn_beside_and_marked(host: str, unicode: str | None,
                                                           warning: str | None) -> None:
    found = reading(host)
    assert found.unicode == unicode
    if warning is None:
        assert found == Reading(site=site(host), unicode=None, lookalike=None)
    else:
        assert found.lookalike is not None and warning in found.lookalike
