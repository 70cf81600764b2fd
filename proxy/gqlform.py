"""How a GraphQL request reaches GitHub as the proxy judges it (pure): a POST whose JSON body
holds the document itself.

``gitguard.py`` reads the document of a POST to ``/graphql``. Two other shapes would carry a
document it never read:

* **Another method.** A document in a GET's query string (``?query=``) or in its body runs
  on a server that takes one there, and a read is not judged: a non-POST request to
  ``/graphql`` that carries a query string or a body is refused (:func:`method_refusal`).
* **A stored document.** A server that keeps documents runs one named by a hash or an id
  (``extensions.persistedQuery``, ``doc_id``, ``id``, ``queryId``) in place of, or beside,
  the ``query`` sent: a body with any top-level key but ``query``, ``variables`` and
  ``operationName`` is refused (:func:`keys_refusal`).
"""

from __future__ import annotations

import json
import posixpath
from urllib.parse import unquote

#: What a GraphQL POST's body may hold: the document, its variables, which operation.
KEYS = frozenset({"query", "variables", "operationName"})


def is_graphql(path: str) -> bool:
    """Whether a server may read ``path`` as a GraphQL endpoint: its last segment is
    ``graphql`` once escapes (twice over), dot segments, parameters and case are read away."""
    clean = path.split("?", 1)[0]
    for _ in range(4):
        if "%" not in clean:
            break
        clean = unquote(clean)
    clean = posixpath.normpath("/" + clean.replace("\\", "/")).lower()
    return clean.rsplit("/", 1)[-1].split(";", 1)[0] == "graphql"


def method_refusal(method: str, path: str, *, body: bool) -> str | None:
    """Why a ``method`` request to ``path`` (carrying a body when ``body``) is refused as a
    GraphQL document the proxy would not read, or None."""
    if method == "POST" or not is_graphql(path) or not (body or "?" in path):
        return None
    return (f"a GraphQL document in a {method}'s {'body' if body else 'query string'} is "
            "not checked; send it as a POST to /graphql with a JSON body "
            '{"query": ..., "variables": {...}}')


def keys_refusal(body: bytes | None) -> str | None:
    """Why a GraphQL POST's JSON body ``body`` is refused for keys beside :data:`KEYS`, or
    None (a body that is no JSON object is left to the document's own check)."""
    try:
        doc = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    others = sorted(str(k) for k in doc if k not in KEYS)
    if not others:
        return None
    return (f"a GraphQL request's {', '.join(others[:3])} may name a stored document the "
            "proxy never read (a persisted query's hash, a document's id); send the "
            "document itself in \"query\", with only \"variables\" and \"operationName\" "
            "beside it")
