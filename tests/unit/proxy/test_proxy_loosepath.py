"""A request path as the loosest server reads it (pure): IIS's ``%uXXXX`` and overlong
UTF-8 decoded, a well-formed non-ASCII name left as itself."""

from __future__ import annotations

import pytest

from proxy.loosepath import folded, lax_utf8, loose_path


@pytest.mark.parametrize(("target", "read"), [
    ("/api/oauth/claude_cli/create_api_key", "/api/oauth/claude_cli/create_api_key"),
    ("/a%c0%afb", "/a/b"),  # overlong "/", two bytes
    ("/a%C0%AFb", "/a/b"),
    ("/a%e0%80%afb", "/a/b"),  # three bytes
    ("/a%f0%80%80%afb", "/a/b"),  # four bytes
    ("/a%u002fb", "/a/b"),  # IIS
    ("/a%U002Fb", "/a/b"),
    ("/x/%c0%ae%c0%ae/a", "/a"),  # overlong ".."
    ("/x/%u002e%u002e/a", "/a"),
    ("/a%25c0%25afb", "/a/b"),  # escaped again
    ("/a%25u002fb", "/a/b"),  # "%u002f" escaped again
    ("/a%5cb", "/a/b"),  # a backslash
    ("/a;x/b", "/a/b"),  # Tomcat's parameters
    ("/A/B?x=%c0%af", "/a/b"),  # the query is no path
    ("/repos/o/r/contents/caf%C3%A9.txt", "/repos/o/r/contents/café.txt"),
    ("/repos/o/r/contents/%E6%97%A5%E6%9C%AC", "/repos/o/r/contents/日本"),
    ("/a%ffb", "/a\xffb"),  # a byte that begins no sequence reads as itself
    ("/a%f4%90%80%80b", "/a\xf4\x90\x80\x80b"),  # past Unicode: its bytes
])
def test_loose_path(target: str, read: str) -> None:
    assert loose_path(target) == read


@pytest.mark.parametrize(("data", "text"), [
    (b"plain", "plain"),
    (b"\xc0\xaf\xc0\xae", "/."),
    (b"\xc3\xa9", "é"),
    (b"\xc3", "\xc3"),  # cut short
    (b"\xed\xa0\x80", "\xed\xa0\x80"),  # a surrogate: its bytes
])
def test_lax_utf8(data: bytes, text: str) -> None:
    assert lax_utf8(data) == text


@pytest.mark.parametrize(("read", "fold"), [
    ("/api/oauth/claude_cli/create_api_key", "/api/oauth/claude_cli/create_api_key"),
    ("/ap\u0131/x", "/api/x"),  # a dotless i: its capital is I (.NET, Java)
    ("/u\u017fers", "/users"),  # a long s: its capital is S
    ("/ap\u0130/x", "/api/x"),  # a dotted capital I: i to Java (one character, not two)
    ("/adm\u0049\u0307n", "/admin"),  # I and a dot above: NFKC makes it the dotted I
    ("/acce\u00df", "/access"),  # a sharp s: its capitals are SS
    ("/acce\u1e9e", "/access"),  # a capital sharp s: by way of its small one
    ("/\u212a", "/k"),  # the Kelvin sign
    ("/create_api_\uff4bey", "/create_api_key"),  # a fullwidth k (NFKC)
    ("/a\uff0fb", "/a/b"),  # a fullwidth slash makes a segment
    ("/x/\uff0e\uff0e/a", "/a"),  # fullwidth dots make a dot segment
    ("/api\uff1bx/oauth", "/api/oauth"),  # a fullwidth ";" makes a parameter
    ("/a\uff3cb", "/a/b"),  # a fullwidth backslash
    ("/caf\u00e9", "/cafe"),  # an accent reads as nothing, as an accent-blind server reads it
    # Characters that draw nothing (Default_Ignorable_Code_Point) read as nothing.
    ("/create_\u200bapi_key", "/create_api_key"),  # a zero-width space
    ("/organ\u00adizations", "/organizations"),  # a soft hyphen
    ("/a\u2060\u200c\u200d\ufeffb", "/ab"),  # a word joiner, ZWNJ, ZWJ, a BOM
    ("/k\u034fey\ufe0f\U000e0041", "/key"),  # a grapheme joiner, a variation selector, a tag
    ("/x/.\u200b./a", "/a"),  # a dot segment once they are gone
    ("/adm\u0049\u200b\u0307n", "/admin"),  # the dotted I they stood between
    ("/cafe\u0301", "/cafe"),  # a combining mark too
    # What ICU's collation weighs nothing, though no default-ignorable, reads as nothing.
    ("/create_api\x00_key", "/create_api_key"),  # a NUL
    ("/create\x01_api\x7f\x9f_key", "/create_api_key"),  # C0 and C1 controls, DEL
    ("/create_api\u0591_key", "/create_api_key"),  # a Hebrew accent
    ("/organization\u0640", "/organization"),  # an Arabic tatweel: a letter to \w
    ("/k\U0001d165ey", "/key"),  # a musical stem (a spacing mark)
    ("/k\U00010efdey", "/key"),  # an Arabic mark newer than this Unicode
    ("/k\u1cd3ey\u180a\u07fa\ufe73", "/key"),  # signs and letters ICU weighs nothing
    ("/k\ue000ey", "/key"),  # a private use character
    # A digit of any script is its ASCII one, as ICU weighs it.
    ("/v\u0661/x", "/v1/x"),  # Arabic-Indic
    ("/v\u0967/x", "/v1/x"),  # Devanagari
    ("/api/\u1369/x", "/api/1/x"),  # Ethiopic (a number, not a decimal digit)
    ("/api/\u3007/x", "/api/0/x"),  # the ideographic zero
    ("/v\u00bd", "/v1\u20442"),  # a fraction is no digit (NFKD spells it out)
    # A letter ICU weighs as the letter but for case.
    ("/\U0001f15aey", "/key"),  # NEGATIVE CIRCLED LATIN CAPITAL LETTER K
    ("/\U0001f17aey/\U0001f18a", "/key/p"),  # negative squared, crossed negative squared
    ("/cre\u0363te", "/create"),  # COMBINING LATIN SMALL LETTER A
    ("/\u1abf\u1dcax", "/wrx"),  # small letters below
    ("/\U0001f1a5", "/d"),  # SQUARED LATIN SMALL LETTER D
    # A letter with a stroke or a hook no NFKD takes off, an insular one, an eth: ICU blind
    # to accents weighs each as the letter.
    ("/organizati\u00f8n/\u0141\u0110\u0127", "/organization/ldh"),
    ("/\u00f0\u00d0\ua77a\u1d79\ua75b\U000107a2", "/dddgro"),
    ("/\u01c5", "/dz"),  # a ligature NFKD spells out keeps both letters
])
def test_folded(read: str, fold: str) -> None:
    assert folded(read) == fold
