"""HTTP methods that only read.

One list serves every rule that tells a read from a write: the API's cross-site checks
and the proxy's (a read-only session's requests, a session's GitHub writes, a credential's
uses). A method not in it is a write, whatever its name.
"""

from __future__ import annotations

READS = frozenset({"GET", "HEAD", "OPTIONS"})
