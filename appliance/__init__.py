"""Clauderon's core: settings, sessions, the store, worktrees, credentials and backends.

Nothing in here knows about HTTP frameworks, TLS servers or argv parsing; the edges
(``api``, ``proxy``, ``cli``) build on it.
"""

import sys

__version__ = "0.1.0"

# httpx's package imports its command-line client when that client's dependencies are
# installed (rich, click, pygments; they are, for the terminal UI): about 5 MiB in each
# service that talks HTTP, for a client no service runs. A None entry makes that import
# fail as "not installed", which httpx expects; `python -m httpx` is unaffected elsewhere.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
