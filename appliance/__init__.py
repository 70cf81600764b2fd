"""Clauderon's core: settings, sessions, the store, worktrees, credentials and backends.

Nothing in here knows about HTTP frameworks, TLS servers or argv parsing; the edges
(``api``, ``proxy``, ``cli``) build on it.
"""

__version__ = "0.1.0"
