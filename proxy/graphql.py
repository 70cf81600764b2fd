"""What a GraphQL document would change: the mutations it names. Pure: text in, names out.

GitHub's GraphQL API (``POST api.github.com/graphql``) can do nearly all its REST API can,
merging a pull request and moving any ref included, so a session's GraphQL writes are
judged like its REST writes (``gitguard.py``): a document passes when every mutation field
at the top of every mutation operation in it is one a session may use. Every operation
counts, not only the one ``operationName`` picks, so which one the server runs cannot
matter.

The scan follows the GraphQL lexical grammar (names, punctuators, numbers, strings and block
strings with their escapes, comments; commas are white space) and the shape of executable
definitions: ``query``/``mutation``/``subscription`` operations (with variables, default
values and directives skipped as balanced brackets), the query shorthand ``{ ... }`` and
``fragment`` definitions. A mutation whose top level is made of fragments, a subscription,
or anything that does not scan is refused as "cannot be checked": what cannot be read is
never let through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

_TOKEN = re.compile(r'''
    (?P<skip>[\ \t\r\n,\ufeff]+|\#[^\n\r]*)
  | (?P<block>"""(?:\\"""|[^"]|"(?!""))*+""")
  | (?P<string>"(?:\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4}|[^"\\\n\r])*+")
  | (?P<spread>\.\.\.)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<punct>[!$&()\:=@\[\]{|}])
''', re.VERBOSE)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_OPEN = {"(": ")", "[": "]", "{": "}"}


class Unreadable(ValueError):
    """The document does not scan as GraphQL (or is built so it cannot be checked)."""


def tokens(text: str) -> list[str]:
    """The document's tokens; strings and numbers are kept as one token each."""
    out: list[str] = []
    at = 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None:
            raise Unreadable(f"unexpected {text[at]!r} at offset {at}")
        if m.lastgroup != "skip":
            out.append(m.group())
        at = m.end()
    return out


def _skip(toks: list[str], at: int) -> int:
    """Past the balanced bracket that opens at ``at``."""
    stack = [_OPEN[toks[at]]]
    at += 1
    while stack:
        if at >= len(toks):
            raise Unreadable("a bracket is never closed")
        tok = toks[at]
        if tok in _OPEN:
            stack.append(_OPEN[tok])
        elif tok in (")", "]", "}") and tok != stack.pop():
            raise Unreadable("brackets do not match")
        at += 1
    return at


def _fields(toks: list[str], at: int) -> tuple[list[str], int]:
    """The field names of the selection set that opens at ``at``, and where it ends."""
    names: list[str] = []
    at += 1
    while at < len(toks) and toks[at] != "}":
        if toks[at] == "...":
            raise Unreadable("a mutation made of fragments cannot be checked")
        name, at = _name(toks, at), at + 1
        if at < len(toks) and toks[at] == ":":  # alias: field
            name, at = _name(toks, at + 1), at + 2
        names.append(name)
        at = _past_arguments_and_directives(toks, at)
        if at < len(toks) and toks[at] == "{":
            at = _skip(toks, at)
    if at >= len(toks):
        raise Unreadable("a selection set is never closed")
    return names, at + 1


def _name(toks: list[str], at: int) -> str:
    if at >= len(toks) or not _NAME.fullmatch(toks[at]):
        raise Unreadable(f"a field was expected at token {at}")
    return toks[at]


def _past_arguments_and_directives(toks: list[str], at: int) -> int:
    while at < len(toks):
        if toks[at] == "(":
            at = _skip(toks, at)
        elif toks[at] == "@" and at + 1 < len(toks):
            at += 2
        else:
            break
    return at


def mutations(text: str) -> list[str]:
    """The top-level fields of every mutation operation in the document, in order.

    Raises :class:`Unreadable` for a document that does not scan, a subscription, or a
    mutation whose top level spreads a fragment."""
    toks = tokens(text)
    found: list[str] = []
    at = 0
    while at < len(toks):
        tok = toks[at]
        if tok == "{":  # the query shorthand
            at = _skip(toks, at)
            continue
        if tok not in ("query", "mutation", "subscription", "fragment"):
            raise Unreadable(f"a definition was expected, not {tok!r}")
        if tok == "subscription":
            raise Unreadable("a subscription cannot be checked")
        at += 1
        while at < len(toks) and toks[at] != "{":
            at = _skip(toks, at) if toks[at] in ("(", "[") else at + 1
        if at >= len(toks):
            raise Unreadable(f"the {tok} has no selection set")
        if tok == "mutation":
            names, at = _fields(toks, at)
            found += names
        else:
            at = _skip(toks, at)
    return found


def _walk(doc: object) -> Iterator[object]:
    """The JSON value ``doc`` and every value inside it (walked without recursion)."""
    todo = [doc]
    while todo:
        item = todo.pop()
        yield item
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def values_of(doc: object, key: str) -> list[object]:
    """Every value of ``key`` anywhere in the JSON value ``doc``."""
    return [item[key] for item in _walk(doc) if isinstance(item, dict) and key in item]


def aliased(text: str) -> bool:
    """Whether the document renames any field it selects (``name: field``): a colon outside
    every argument list and variable definition. Raises :class:`Unreadable` as
    :func:`tokens` does."""
    depth = 0
    for tok in tokens(text):
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif tok == ":" and depth == 0:
            return True
    return False


def unions(query: str, variables: object) -> bool:
    """Whether every ``requestReviews`` of the document adds to the reviewers asked (GitHub's
    ``union`` defaults to false: they are replaced): ``union: true`` in its arguments, or
    ``union: $v`` or ``input: $v`` with the variable ``v`` saying it; nothing else names
    ``union`` there. A variable's default is not read: a value sent puts it aside."""
    toks = tokens(query)
    given = variables if isinstance(variables, dict) else {}

    def value(at: int) -> object:  # the literal or variable at ``at``
        if toks[at] == "$" and at + 1 < len(toks):
            return given.get(toks[at + 1])
        return {"true": True}.get(toks[at])

    for at, tok in enumerate(toks):
        if tok != "requestReviews":
            continue
        if toks[at + 1:at + 2] != ["("]:
            return False  # an alias, a name: not read as one
        depth, end, said = 0, at + 1, False
        while end < len(toks):
            depth += {"(": 1, "{": 1, "[": 1, ")": -1, "}": -1, "]": -1}.get(toks[end], 0)
            if depth == 0:
                break
            if toks[end + 1:end + 2] == [":"] and end + 2 < len(toks):
                if toks[end] == "union":
                    if value(end + 2) is not True:
                        return False
                    said = True
                elif toks[end] == "input" and toks[end + 2] == "$":
                    got = value(end + 2)
                    if not isinstance(got, dict) or got.get("union") is not True:
                        return False
                    said = True
            end += 1
        if not said:
            return False
    return True


#: Where GitHub's schema takes a node id: ``id``, ``ids`` and every ``…Id`` / ``…Ids``
#: (``subjectId``, ``pullRequestId``, ``labelIds``), and the one exception to that naming a
#: session's mutations use, ``inReplyTo`` (a review comment's reply).
_ID_PLACE = re.compile(r"ids?|inReplyTo|.*[a-z0-9](?:Id|ID|Ids|IDs)")


def _text(tok: str) -> str | None:
    """A string token's text (a block string's trimmed), or None for any other token."""
    if tok.startswith('"""'):
        return tok[3:-3].replace('\\"""', '"""').strip()
    if tok.startswith('"'):
        text: str = json.loads(tok)
        return text
    return None


def strings(query: str, variables: object) -> list[str]:
    """Every string the document and its ``variables`` carry, wherever it stands (a block
    string as written and trimmed). Raises :class:`Unreadable` as :func:`tokens` does."""
    found: list[str] = []
    for tok in tokens(query):
        if tok.startswith('"""'):
            text = tok[3:-3].replace('\\"""', '"""')
            found += [text, text.strip()]
        elif tok.startswith('"'):
            found.append(json.loads(tok))
    return found + [item for item in _walk(variables) if isinstance(item, str)]


def id_places(query: str, variables: object) -> frozenset[str]:
    """The strings the document and its ``variables`` give where a node id goes: the value
    (or a list's items) of an argument or input field named as GitHub names its ids
    (:data:`_ID_PLACE`), and of a variable declared ``ID`` or passed there. A title, a body
    or a label's name is not one, whatever it looks like. Raises :class:`Unreadable` as
    :func:`tokens` does."""
    toks = tokens(query)
    places: set[str] = set()
    ided: set[str] = set()  # variables that hold ids
    defaults: dict[str, list[str]] = {}  # each variable's default's strings
    lists: list[bool] = []  # for each open bracket: a list of ids?
    at = 0
    while at < len(toks):
        tok = toks[at]
        if tok == "$" and toks[at + 2:at + 3] == [":"]:  # a variable's definition
            name, at = toks[at + 1], at + 3
            kind = at
            while at < len(toks) and (toks[at] in "[]!" or _NAME.fullmatch(toks[at])):
                at += 1
            if [t for t in toks[kind:at] if _NAME.fullmatch(t)][:1] == ["ID"]:
                ided.add(name)
            if toks[at:at + 1] == ["="]:  # its default: what it holds when none is sent
                end = _skip(toks, at + 1) if toks[at + 1] in _OPEN else at + 2
                defaults[name] = [t for t in toks[at + 1:end] if _text(t) is not None]
                at += 1  # and read on through it: an input object's fields name their ids
            continue
        keyed = _NAME.fullmatch(tok) is not None and toks[at + 1:at + 2] == [":"]
        placed = keyed and _ID_PLACE.fullmatch(tok) is not None
        value_at = at + 2 if keyed else at
        value = toks[value_at] if value_at < len(toks) else ""
        inside = bool(lists) and lists[-1]
        if value in _OPEN:
            lists.append(value == "[" and (placed or (inside and not keyed)))
        elif value in (")", "]", "}"):
            if lists:
                lists.pop()
        elif placed or (inside and not keyed):
            if value == "$" and value_at + 1 < len(toks):
                ided.add(toks[value_at + 1])
            elif (text := _text(value)) is not None:
                places.add(text)
        at = value_at + 1
    given = variables if isinstance(variables, dict) else {}
    places.update(_text(t) or "" for name in ided - given.keys()
                  for t in defaults.get(name, ()))
    todo: list[tuple[bool, object]] = [(name in ided, v) for name, v in given.items()]
    while todo:
        held, item = todo.pop()
        if isinstance(item, str) and held:
            places.add(item)
        elif isinstance(item, list):
            todo.extend((held, v) for v in item)
        elif isinstance(item, dict):
            todo.extend((_ID_PLACE.fullmatch(str(k)) is not None, v) for k, v in item.items())
    return frozenset(places)

