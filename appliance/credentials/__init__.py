"""Credential sources for the proxy: environment > 1Password > secret files (> Codex auth.json).

The proxy injects real credentials into agents' requests; this package finds them. Only
names, sources and masked values ever leave it in logs or summaries.

- :mod:`.model`        ``Credential``, ``CredentialSet``, the table of known credentials
- :mod:`.loader`       ``load_credentials``: the precedence, proxy.toml's credential keys
- :mod:`.onepassword`  ``op read`` through the ``sh`` library, per-item deadlines
- :mod:`.files`        ``CLAUDERON_HOME/secrets/<name>``, refused unless owner-only
- :mod:`.chatgpt`      the host's Codex ``auth.json``: parsing and atomic write-back
"""

from __future__ import annotations

from appliance.credentials.chatgpt import write_codex_auth
from appliance.credentials.loader import load_credentials
from appliance.credentials.model import Credential, CredentialSet

__all__ = ["Credential", "CredentialSet", "load_credentials", "write_codex_auth"]
