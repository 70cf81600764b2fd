"""Why a session's model requests fail, in words a person can act on (pure).

The proxy is the only part of the appliance that sees the model APIs' answers. For each
*model call* (a metered request to a model host: ``proxy/meter.py``) it hands what its
audit line says -- the status, the error the proxy met before any answer (DNS, refused,
TLS, ...), the credential it put in -- to :func:`judge`, which says one of three things:

* the call worked (2xx): the session's ``model_error`` is cleared;
* it failed: ``model_error`` becomes the sentence :func:`judge` returns (the UIs show it as
  the agent's status: ``appliance/wire.py``, ``agent_state``);
* it says nothing about the model (the client hung up, a budget of ours refused it): the
  field is left as it is.

The sentences name what to change: the environment variable of the credential the host's
rule takes (:data:`appliance.credentials.model.SPECS`), the session's model, the network.
They never hold a secret: only names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.credentials.model import SPECS

#: The proxy's own ``X-Proxy-Error-Type`` values, as a person reads them.
_UNREACHABLE = {
    "DNS_RESOLUTION_FAILURE": "its name does not resolve from this machine (DNS)",
    "CONNECTION_REFUSED": "the connection was refused",
    "CONNECTION_TIMEOUT": "the connection timed out",
    "TLS_CERTIFICATE_ERROR": ("its TLS certificate is not trusted (behind a TLS-inspecting "
                              "network? set extra_ca_bundle in proxy.toml)"),
    "UPSTREAM_PROTOCOL_ERROR": "it answered something that is not HTTP",
    "UPSTREAM_TIMEOUT": "it did not answer in time",
    "DESTINATION_FORBIDDEN": "it resolves to an address of this machine, which the proxy refuses",
}
#: Failures that are ours or the client's, not the model API's: they change nothing.
_SILENT_ERRORS = frozenset({"BUDGET_EXCEEDED", "CLIENT_GONE", "CLIENT_PROTOCOL_ERROR"})
#: Longest sentence kept (it is shown in one line of a table).
MAX_REASON = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What one model call says: ``ok`` (clear the reason) or a ``reason`` (it failed)."""

    ok: bool
    reason: str | None = None


OK = Verdict(ok=True)


def env_vars(credentials: Sequence[str]) -> list[str]:
    """The environment variables that set ``credentials`` (first choice of each), in order."""
    by_name = {spec.name: spec.env_vars[0] for spec in SPECS}
    return [by_name.get(name, name) for name in credentials]


def _either(names: Sequence[str]) -> str:
    return " or ".join(names) if names else "its credential"


def judge(*, host: str, status: int, error: str | None, credential: str | None,
          rule_credentials: Sequence[str]) -> Verdict | None:
    """The verdict of one model call to ``host`` (None: it says nothing about the model).

    ``credential`` is the one the proxy put in (None: none was, because none is
    configured); ``rule_credentials`` those the host's rule could take (empty: no rule).
    """
    if error in _SILENT_ERRORS:
        return None
    if error in _UNREACHABLE:
        return _failed(f"cannot reach {host}: {_UNREACHABLE[error]}")
    if 200 <= status < 300:
        return OK
    if status < 400:
        return None  # an interim or redirect answer: the call goes on
    said = f"the model API answered {status}"
    if status in (401, 403):
        if credential == "codex_access_token":  # from the person's login, not a variable
            return _failed(f"{said}: the person's ChatGPT login was refused; sign Codex in "
                           "again where the appliance runs (`codex login`)")
        if credential is None and rule_credentials:
            return _failed(f"{said}: no credential is configured for {host}; set "
                           f"{_either(env_vars(rule_credentials))} (see `clauderon status`)")
        if credential is not None:
            return _failed(f"{said}: check {_either(env_vars([credential]))} "
                           "(`clauderon status` shows where it comes from)")
        return _failed(said)
    if status == 404:
        return _failed(f"{said}: check the session's model name")
    if status == 429:
        return _failed(f"{said}: rate-limited or out of credit at {host}")
    if status >= 500:
        return _failed(f"{said}: a problem at {host}; the agent retries")
    return _failed(said)


def _failed(reason: str) -> Verdict:
    return Verdict(ok=False, reason=reason[:MAX_REASON])
