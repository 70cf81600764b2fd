"""JSON objects that name each key once. Pure.

Readers differ on a key named twice: Python and most keep the last, some the first, and Go's
``encoding/json`` (Git LFS's reference server, many services) matches a key in any case, so
``operation`` and ``Operation`` set one field. Where one reader judges a document and
another acts on it (the proxy and the service behind it, the API and what it stores), an
object naming a key twice, in any case, is refused rather than read one way.
"""

from __future__ import annotations


def once(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``json.loads``'s ``object_pairs_hook``: the object, or ValueError naming the key."""
    seen: set[str] = set()
    for key, _ in pairs:
        folded = key.casefold()
        if folded in seen:
            raise ValueError(f"the key {key[:100]!r} is named twice (in some case)")
        seen.add(folded)
    return dict(pairs)
