"""The decisions: who may go where, with which credential. Pure, no I/O.

Theory of operation. A client connection first presents a CONNECT (or, for plain HTTP, an
absolute-form request). :func:`decide_connect` answers it: 407 without valid session
credentials, 403 for a destination the configuration denies, otherwise *accept* (the
server terminates TLS and reads the requests inside). Every request inside, and every
plain-HTTP request, goes through :func:`decide_request`: a request that names another
authority than the one it travels to (a ``Host`` or absolute URL that differs from the
CONNECT target or the plain request's URL) is refused with 421; the session's access mode
(read live by the caller) may block it; otherwise the host's rule, if any, rewrites its
headers and the request is forwarded. The real credential goes in only when both legs
are TLS (an intercepted tunnel, and an ``https`` upstream) and the port is the rule's;
anywhere else the placeholder is stripped and nothing is injected. The ``Host`` sent on
is always the proxy's own, from the target. Once the server has resolved the destination,
:func:`address_refusal` applies "no way home": loopback, link-local, unspecified, the
host's own addresses, the cloud metadata services (:data:`METADATA`), the networks
``proxy.toml`` names (``refuse_networks``) and every address that is not public (the
person's LAN, VPN, tailnet, a cluster's networks), unless ``allow_networks`` lists it, are
refused unless an override named them.
:func:`audit_record` turns what happened into the one audit line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from appliance.audit import AuditRecord, Decision, Phase, redact_path
from appliance.methods import READS
from proxy.directory import AccessMode, SessionAuth, authenticate
from proxy.gitguard import is_fetch, is_remote_write
from proxy.heads import (
    ProxyCredentials,
    Target,
    forwardable,
    is_upgrade,
    is_websocket,
    misdirection,
)
from proxy.inject import (
    CredentialLookup,
    Headers,
    apply_rule,
    header_value,
    placeholder_headers,
    without,
)
from proxy.meter import Api, metered_api, unmetered_spend
from proxy.proxy_config import IpNetwork, ProxyConfig
from proxy.rules import Rule, host_matches, match_rule, matches_any

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services where they are not link-local: each answers the host's own
#: identity (its role's credentials) to whatever asks from the host, as 169.254.169.254 does.
METADATA = tuple(ipaddress.ip_network(n) for n in (
    "fd00:ec2::/64",  # AWS over IPv6: instance metadata (::254), EKS Pod Identity (::23)
    "fd20:ce::254/128",  # Google Cloud's metadata server over IPv6
    "100.100.100.200/32",  # Alibaba Cloud's metadata service
    "168.63.129.16/32",  # Azure's WireServer (the VM agent's goal state and certificates)
))


@dataclass(frozen=True, slots=True, kw_only=True)
class Respond:
    """Answer the client ourselves; nothing goes upstream."""

    status: int
    body: str
    decision: Decision
    error_type: str | None = None
    headers: Headers = field(default_factory=list)
    #: Close the client connection after the answer (the client is not to be trusted).
    close: bool = False
    content_type: bytes = b"text/plain; charset=utf-8"
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    """The CONNECT is accepted: terminate TLS and read the requests inside."""

    session: SessionAuth


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    headers: Headers
    decision: Decision
    credential: str | None
    rule: Rule | None
    upgrade: bool
    #: The model API whose answer carries token usage (``meter.py``), when it is one.
    meter: Api | None = None
    #: A model call that may spend what the meter cannot read (``meter.unmetered_spend``),
    #: named by the API whose error format a refusal takes.
    unmetered: Api | None = None
    #: The credential as it travels, masked where the answer carries it back (``scrub.py``).
    secrets: tuple[bytes, ...] = ()


def reject() -> Respond:
    return Respond(
        status=407,
        body="Proxy authentication required: use the session's proxy URL (id:token).\n",
        decision=Decision.REJECTED,
        headers=[(b"proxy-authenticate", b'Basic realm="clauderon"')],
    )


def _listed(config: ProxyConfig, target: Target) -> bool:
    return config.override_for(target.host, target.port) is not None


def decide_connect(
    target: Target,
    presented: ProxyCredentials | None,
    session: SessionAuth | None,
    config: ProxyConfig,
) -> Respond | Accept:
    if session is None or not authenticate(presented, session):
        return reject()
    if config.deny_unlisted and not _listed(config, target):
        return Respond(
            status=403,
            body=f"{target.host} is not a listed upstream and this proxy denies the rest.\n",
            decision=Decision.DENIED,
            error_type="DESTINATION_DENIED",
        )
    return Accept(session=session)


def is_model_host(config: ProxyConfig, host: str) -> bool:
    return matches_any(config.model_hosts, host)


def over_tls(config: ProxyConfig, target: Target) -> bool:
    """Whether a request to ``target`` is TLS on both legs (tunnel in, https out)."""
    if target.scheme != "https":
        return False
    override = config.override_for(target.host, target.port)
    return override is None or override.scheme == "https"


def decide_request(
    *,
    method: str,
    target: Target,
    headers: Headers,
    session: SessionAuth,
    config: ProxyConfig,
    creds: CredentialLookup,
    tunnel: Target | None = None,
    chatgpt: str = "",
) -> Respond | Forward:
    """Block, or forward with the headers to send (placeholder swapped for the real one).
    ``tunnel``: the CONNECT target of a request inside a tunnel; ``chatgpt``: the session's
    ChatGPT placeholder (``inject.apply_rule``'s ``own``)."""
    refused = _bad_method(method) or _refusal(
        method=method, target=target, headers=headers, session=session, config=config,
        tunnel=tunnel)
    if refused is not None:
        return refused
    upgrade = is_upgrade(headers)
    out = [(b"host", target.authority.encode("ascii")),
           *without(forwardable(headers, upgrade=upgrade), b"host")]
    model = is_model_host(config, target.host)
    meter = metered_api(method, target.path) if model else None
    unmetered = None
    anthropic = host_matches("api.anthropic.com", target.host)
    if model and unmetered_spend(method, target.path, upgrade=upgrade, anthropic=anthropic):
        unmetered = Api.ANTHROPIC if anthropic else Api.GEMINI \
            if host_matches("generativelanguage.googleapis.com", target.host) else Api.RESPONSES
    if meter is not None:
        # The meter reads usage from the answer as it passes: ask for it uncompressed.
        out = [*without(out, b"accept-encoding"), (b"accept-encoding", b"identity")]
    rule = match_rule(config.rules, target.host, target.path)
    if rule is None:
        return Forward(headers=out, decision=Decision.PASSED, credential=None, rule=None,
                       upgrade=upgrade, meter=meter, unmetered=unmetered)
    if target.port != rule.port or not over_tls(config, target):
        # Cleartext, or another port: no credential, and no placeholder either.
        return Forward(headers=without(out, *placeholder_headers(rule)),
                       decision=Decision.PASSED, credential=None, rule=None, upgrade=upgrade,
                       meter=meter, unmetered=unmetered)
    injection = apply_rule(rule, out, creds, own=chatgpt)
    headers = injection.headers
    if injection.secrets and upgrade and not is_websocket(headers):
        # The masking below reads a WebSocket's frames; another protocol codes its own
        # (HTTP/2's headers are HPACK, Huffman-coded): no switch to it with a credential.
        headers, upgrade = without(headers, b"upgrade", b"connection"), False
    if injection.secrets:
        # An answer that echoes the credential is masked on its way back (``scrub.py``),
        # which reads it only uncompressed (WebSocket frames too) and whole: a range of an
        # echo would hand over the credential a few bytes at a time, each too short to know.
        headers = [*without(headers, b"accept-encoding", b"range", b"if-range",
                            b"sec-websocket-extensions"),
                   (b"accept-encoding", b"identity")]
    decision = Decision.INJECTED if injection.credential else Decision.PASSED
    return Forward(headers=headers, decision=decision, credential=injection.credential,
                   rule=rule, upgrade=upgrade, meter=meter, unmetered=unmetered,
                   secrets=injection.secrets)



def _bad_method(method: str) -> Respond | None:
    """A method no rule may be trusted to judge (400 or 405), or None."""
    if method != method.upper():
        # Every rule reads the method as GET, POST...; a server that takes "post" for POST
        # would run a write no rule had judged as one.
        return Respond(status=400, body=(f"Bad request: the method {method!r} is not in "
                                         "capitals; write it as HTTP's methods are "
                                         f"({method.upper()}).\n"),
                       decision=Decision.ERROR, error_type="BAD_METHOD", close=True)
    if method == "CONNECT":
        # Only a tunnel's requests get here: one asking the host for a tunnel of its own
        # would carry the credential into a stream that no rule or mask reads.
        return Respond(status=405, body=("Refused by Clauderon: a CONNECT inside a tunnel; "
                                         "a tunnel carries requests to its host, not other "
                                         "tunnels. Open a new tunnel through the proxy.\n"),
                       decision=Decision.ERROR, error_type="BAD_METHOD", close=True)
    return None


def _refusal(*, method: str, target: Target, headers: Headers, session: SessionAuth,
             config: ProxyConfig, tunnel: Target | None) -> Respond | None:
    """A request sent to another authority than its own (421), or a write from a
    read-only session (403); None when neither."""
    wrong = misdirection(headers, target, tunnel)
    if wrong is not None:
        return Respond(
            status=421,
            body=(f"Misdirected request: {wrong}. The proxy sends a request only to the "
                  "host and port it was addressed to; make the Host header (and any "
                  "absolute URL) name that same host and port.\n"),
            decision=Decision.DENIED,
            error_type="MISDIRECTED_REQUEST",
            close=True,
        )
    if (
        session.access_mode is AccessMode.READ_ONLY
        and method not in READS
        and not is_model_host(config, target.host)
        # a clone or fetch reads, though it POSTs
        and not is_fetch(method, target.path, header_value(headers, b"content-type"))
        # The appliance's own identity is read-only but for pushes and GitHub API writes,
        # which the owner rules (``gitguard``) narrow to session branches and their pulls.
        and not (session.owner and is_remote_write(method, target.host, target.path))
    ):
        return Respond(
            status=403,
            body=(
                f"Blocked by Clauderon: session {session.name!r} is read-only, so {method} "
                f"requests to {target.host} are not allowed. Read-only sessions may only "
                "GET, HEAD and OPTIONS, and fetch with git (the model APIs accept any method). "
                "Switch the session to read-write to allow this request.\n"
            ),
            decision=Decision.BLOCKED,
            error_type="READ_ONLY_MODE",
        )
    return None

#: IPv6 prefixes whose last 32 bits are an IPv4 address a gateway takes the packet to:
#: NAT64's well-known and local-use prefixes (RFC 6052, 8215), and IPv4-compatible
#: addresses (``::a.b.c.d``, deprecated; some stacks still route them).
NAT64 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96"))


def spellings(addr: IpAddress) -> list[IpAddress]:
    """``addr`` and every IPv4 address an IPv6 one carries to a gateway or a host that reads
    it (4-mapped, NAT64, 6to4, Teredo's server and client): each is judged, so no spelling
    of a refused address passes (pure)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return [addr]
    if addr.ipv4_mapped is not None:  # the IPv4 address itself, in the socket API's form
        return [addr.ipv4_mapped]
    found: list[IpAddress] = [addr]
    if any(addr in network for network in NAT64) and not addr.is_loopback \
            and not addr.is_unspecified:
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr.teredo is not None:
        found.extend(addr.teredo)
    return found


def address_refusal(
    addresses: Iterable[IpAddress], forbidden: frozenset[IpAddress], *, overridden: bool,
    bridged: frozenset[IpAddress] = frozenset(), refused: Iterable[IpNetwork] = (),
    allowed: Iterable[IpNetwork] = (),
) -> str | None:
    """Why the resolved destination is refused ("no way home"), or None when it is fine.

    ``refused``: the networks ``proxy.toml`` names (``refuse_networks``); ``allowed``: the
    private networks it lets agents reach (``allow_networks``).
    """
    if overridden:
        return None
    spelt = [spelt for found in addresses for spelt in spellings(found)]
    for addr in spelt:
        if addr.is_loopback or addr.is_unspecified:
            return f"{addr} is this machine (loopback)"
        if addr.is_link_local:
            return f"{addr} is link-local"
        if any(addr in network for network in METADATA):
            return f"{addr} is a cloud metadata service (this machine's identity)"
        if addr.is_multicast or addr.is_reserved:
            return f"{addr} is not a unicast address"
        if addr in forbidden:
            return f"{addr} is one of this machine's own addresses"
        if addr in bridged:
            return f"{addr} is on a container network of this machine"
        for network in refused:
            if addr in network:
                return f"{addr} is in {network}, which proxy.toml refuse_networks names"
    for addr in spelt:  # after the reasons above, which say more
        if not addr.is_global and not any(addr in network for network in allowed):
            return (f"{addr} is a private address (a LAN, VPN, tailnet or cluster network); "
                    "to let agents reach it, list it in proxy.toml allow_networks")
    return None


def audit_record(
    *,
    request_id: str,
    started: datetime,
    duration_s: float,
    session: str | None,
    method: str,
    host: str,
    target: str,
    status: int,
    bytes_in: int,
    bytes_out: int,
    credential: str | None,
    decision: Decision,
    error: str | None = None,
    note: str | None = None,
    phase: Phase | None = None,
    stream: str | None = None,
) -> AuditRecord:
    return AuditRecord(
        ts=started.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        id=request_id,
        session=session,
        method=method[:32],
        host=host[:255],
        path=redact_path(target)[:2048],
        status=status,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        duration_ms=round(duration_s * 1000, 3),
        credential=credential,
        decision=decision,
        error=error,
        note=note,
        phase=phase,
        stream=stream,
    )
