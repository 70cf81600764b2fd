"""Playbooks for the pure decisions: a request in, the expected verdict out."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass

import pytest

from appliance.audit import Decision
from appliance.tokens import hash_token
from proxy.directory import AccessMode, SessionAuth
from proxy.heads import ProxyCredentials, Target
from proxy.inject import Headers
from proxy.policy import (
    Accept,
    Forward,
    Respond,
    address_refusal,
    decide_connect,
    decide_request,
    spellings,
)
from proxy.proxy_config import ProxyConfig, Upstream, config_from_dict
from proxy.rules import (
    DEFAULT_MODEL_HOSTS,
    DEFAULT_RULES,
    match_rule,
    matches_any,
    server_path,
    under,
)


@dataclass(frozen=True)
class Secret:
    name: str
    value: str


class Creds:
    def __init__(self, **values: str) -> None:
        self.values = values

    def get(self, name: str) -> Secret | None:
        return Secret(name, self.values[name]) if name in self.values else None


ALL = Creds(
    anthropic_oauth_token="OAUTH", anthropic_api_key="APIKEY", openai_api_key="OPENAI",
    github_token="GH", npm_token="NPM", docker_token="DOCKER", sentry_auth_token="SENTRY",
    pagerduty_token="PD", codex_access_token="ACCESS", codex_account_id="ACCT",
    grafana_api_key="GRAFANA", gemini_api_key="GEMINI",
)
RW = SessionAuth(session_id="s1", name="one", access_mode=AccessMode.READ_WRITE,
                 proxy_token_hash=hash_token("tok"))
RO = SessionAuth(session_id="s1", name="one", access_mode=AccessMode.READ_ONLY,
                 proxy_token_hash=hash_token("tok"))


#: The session's ChatGPT placeholder: what lets the person's ChatGPT login in.
CHATGPT = "clauderon-chatgpt-0123"


def target(host: str, path: str = "/") -> Target:
    return Target(scheme="https", host=host, port=443, path=path)


def run(method: str, host: str, headers: Headers, *, session: SessionAuth = RW,
        creds: Creds = ALL, config: ProxyConfig | None = None,
        path: str = "/") -> Respond | Forward:
    return decide_request(method=method, target=target(host, path),
                          headers=[(b"host", host.encode()), *headers], session=session,
                          config=config or ProxyConfig(), creds=creds, chatgpt=CHATGPT)


def sent(verdict: Respond | Forward) -> dict[bytes, bytes]:
    assert isinstance(verdict, Forward), verdict
    return {k: v for k, v in verdict.headers}


BASIC_GH = b"Basic " + base64.b64encode(b"x-access-token:GH")

PLAYBOOK = [
    # (method, host, headers the agent sent) -> (headers that must arrive, decision, credential)
    ("POST", "api.anthropic.com", [(b"x-api-key", b"placeholder")],
     {b"authorization": b"Bearer OAUTH", b"anthropic-beta": b"oauth-2025-04-20"}, "injected",
     "anthropic_oauth_token"),
    ("POST", "api.anthropic.com", [(b"authorization", b"Bearer placeholder"),
                                   (b"anthropic-beta", b"a,oauth-2025-04-20")],
     {b"authorization": b"Bearer OAUTH", b"anthropic-beta": b"a,oauth-2025-04-20"}, "injected",
     "anthropic_oauth_token"),
    ("POST", "api.openai.com", [(b"authorization", b"Bearer x")],
     {b"authorization": b"Bearer OPENAI"}, "injected", "openai_api_key"),
    ("GET", "chatgpt.com/backend-api/codex/models", [
        (b"authorization", b"Bearer " + CHATGPT.encode()), (b"chatgpt-account-id", b"fake")],
     {b"authorization": b"Bearer ACCESS", b"chatgpt-account-id": b"ACCT"}, "injected",
     "codex_access_token"),
    ("GET", "ab.chatgpt.com/backend-api/wham/usage", [
        (b"authorization", b"bearer  " + CHATGPT.encode())],
     {b"authorization": b"Bearer ACCESS"}, "injected", "codex_access_token"),
    # Without the session's ChatGPT placeholder (a Claude session, Codex on an API key, an
    # account id of the agent's choosing): as sent, the person's login not in it.
    ("GET", "chatgpt.com/backend-api/plugins/export/curated", [], {}, "passed", None),
    ("POST", "chatgpt.com/backend-api/codex/responses", [
        (b"authorization", b"Bearer sk-clauderon-0123"), (b"chatgpt-account-id", b"acct-9")],
     {b"authorization": b"Bearer sk-clauderon-0123", b"chatgpt-account-id": b"acct-9"},
     "passed", None),
    ("GET", "chatgpt.com/backend-api/wham/usage", [
        (b"authorization", b"Bearer " + CHATGPT.encode() + b"x")],
     {b"authorization": b"Bearer " + CHATGPT.encode() + b"x"}, "passed", None),
    ("GET", "chatgpt.com/backend-api/wham/usage", [
        (b"authorization", b"Basic " + CHATGPT.encode())],
     {b"authorization": b"Basic " + CHATGPT.encode()}, "passed", None),
    # The person's own ChatGPT (conversations, memories): Codex's login goes nowhere there.
    ("GET", "chatgpt.com/backend-api/conversations", [(b"authorization", b"Bearer x")],
     {b"authorization": b"Bearer x"}, "passed", None),
    ("GET", "chat.openai.com/backend-api/memories", [], {}, "passed", None),
    ("GET", "chatgpt.com/backend-api/codexes", [], {}, "passed", None),
    ("GET", "api.github.com", [(b"authorization", b"token placeholder")],
     {b"authorization": b"Bearer GH"}, "injected", "github_token"),
    ("GET", "github.com", [], {b"authorization": BASIC_GH}, "injected", "github_token"),
    ("GET", "registry.npmjs.org", [], {b"authorization": b"Bearer NPM"}, "injected", "npm_token"),
    ("GET", "registry-1.docker.io", [], {b"authorization": b"Bearer DOCKER"}, "injected",
     "docker_token"),
    ("GET", "auth.docker.io", [], {b"authorization": b"Bearer DOCKER"}, "injected",
     "docker_token"),
    ("GET", "sentry.io", [], {b"authorization": b"Bearer SENTRY"}, "injected",
     "sentry_auth_token"),
    ("GET", "api.pagerduty.com", [], {b"authorization": b"Token token=PD"}, "injected",
     "pagerduty_token"),
    ("POST", "generativelanguage.googleapis.com", [(b"x-goog-api-key", b"placeholder")],
     {b"x-goog-api-key": b"GEMINI"}, "injected", "gemini_api_key"),
    ("GET", "example.org", [(b"authorization", b"Bearer mine")],
     {b"authorization": b"Bearer mine"}, "passed", None),
]


@pytest.mark.parametrize(("method", "host", "headers", "expected", "decision", "credential"),
                         PLAYBOOK)
def test_playbook(method: str, host: str, headers: Headers, expected: dict[bytes, bytes],
                  decision: str, credential: str | None) -> None:
    host, _, path = host.partition("/")
    verdict = run(method, host, headers, path=f"/{path}")
    assert isinstance(verdict, Forward)
    out = sent(verdict)
    for name, value in expected.items():
        assert out[name] == value
    assert (verdict.decision, verdict.credential) == (decision, credential)
    if decision == "injected":
        assert not any(b"placeholder" in v for _, v in verdict.headers)
        names = [k for k, _ in verdict.headers]
        assert len(names) == len(set(names))


def test_api_key_when_no_oauth_token_and_the_beta_flag_goes() -> None:
    creds = Creds(anthropic_api_key="APIKEY")
    verdict = run("POST", "api.anthropic.com", [(b"authorization", b"Bearer placeholder"),
                                                (b"anthropic-beta", b"oauth-2025-04-20")],
                  creds=creds)
    out = sent(verdict)
    assert out[b"x-api-key"] == b"APIKEY"
    assert b"authorization" not in out
    assert b"anthropic-beta" not in out


def test_missing_credential_passes_untouched() -> None:
    verdict = run("GET", "api.github.com", [(b"authorization", b"Bearer placeholder")],
                  creds=Creds())
    assert isinstance(verdict, Forward)
    assert (verdict.decision, verdict.credential) == (Decision.PASSED, None)


def test_a_credentialed_answer_is_asked_for_whole_and_uncompressed() -> None:
    """What the credential goes with is masked in the answer (``scrub.py``), so the answer
    must come readable: uncompressed, and whole (a range of an echo would hand over a few
    of the credential's bytes at a time). Without a credential, the request is as sent."""
    asked = [(b"authorization", b"Bearer placeholder"), (b"accept-encoding", b"gzip, br"),
             (b"range", b"bytes=10-14"), (b"if-range", b'"etag"'),
             (b"sec-websocket-extensions", b"permessage-deflate")]
    verdict = run("GET", "github.com", asked)
    assert isinstance(verdict, Forward) and verdict.secrets == (b"GH", BASIC_GH[6:])
    assert sent(verdict)[b"accept-encoding"] == b"identity"
    assert not {b"range", b"if-range", b"sec-websocket-extensions"} & set(sent(verdict))
    bare = run("GET", "github.com", asked, creds=Creds())
    assert isinstance(bare, Forward) and bare.secrets == ()
    assert (sent(bare)[b"accept-encoding"], sent(bare)[b"range"]) == (b"gzip, br", b"bytes=10-14")


@pytest.mark.parametrize("method", ["post", "Post", "pOST", "get"])
def test_a_method_not_in_capitals_is_refused(method: str) -> None:
    """Every rule reads the method in capitals; a server that took ``post`` for POST would
    run a push or a write that no rule judged as one."""
    verdict = run(method, "github.com", [(b"authorization", b"Basic placeholder")],
                  path="/o/r.git/git-receive-pack")
    assert isinstance(verdict, Respond) and (verdict.status, verdict.error_type) == (
        400, "BAD_METHOD") and verdict.close


def test_a_connect_inside_a_tunnel_is_refused() -> None:
    """A tunnel's requests go to its host; a CONNECT among them would ask that host for a
    tunnel of its own, with the credential in it, which nothing after it reads."""
    verdict = run("CONNECT", "github.com", [(b"authorization", b"Basic placeholder")],
                  path="/x")
    assert isinstance(verdict, Respond) and (verdict.status, verdict.error_type) == (
        405, "BAD_METHOD") and verdict.close


def test_hop_by_hop_and_proxy_headers_are_not_forwarded() -> None:
    out = sent(run("GET", "example.org", [(b"proxy-authorization", b"Basic x"),
                                          (b"connection", b"keep-alive, x-private"),
                                          (b"x-private", b"1"), (b"keep-alive", b"5")]))
    assert set(out) == {b"host"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"])
def test_read_only_blocks_writes_to_other_hosts(method: str) -> None:
    verdict = run(method, "api.github.com", [], session=RO)
    assert isinstance(verdict, Respond)
    assert (verdict.status, verdict.decision) == (403, Decision.BLOCKED)
    assert "read-only" in verdict.body and method in verdict.body


@pytest.mark.parametrize(("method", "host"), [
    ("GET", "api.github.com"), ("HEAD", "github.com"), ("OPTIONS", "example.org"),
    ("POST", "api.anthropic.com"), ("POST", "api.openai.com"), ("POST", "chatgpt.com"),
])
def test_read_only_allows_reads_and_model_apis(method: str, host: str) -> None:
    assert isinstance(run(method, host, [], session=RO), Forward)


def test_read_only_may_clone_and_fetch_but_not_push() -> None:
    """Smart HTTP's fetch negotiation is a POST to git-upload-pack: it reads, so a read-only
    session (a Kubernetes init clone among them) may; its push (git-receive-pack) may not."""
    git = [(b"content-type", b"application/x-git-upload-pack-request")]
    fetch = run("POST", "github.com", git, session=RO, path="/o/r.git/git-upload-pack")
    assert isinstance(fetch, Forward)
    for path in ("/o/r.git/git-receive-pack", "/o/r.git/git-upload-pack/x",
                 "/o/r.git/info/lfs/objects/batch"):
        refused = run("POST", "github.com", git, session=RO, path=path)
        assert isinstance(refused, Respond) and refused.status == 403, path
    # Only git's negotiation reads: a form or JSON posted to a path that ends the same way
    # (to a host that is no git server, say) is a write like any other.
    for kind in (b"application/x-www-form-urlencoded", b"application/json", None):
        headers = [(b"content-type", kind)] if kind else []
        refused = run("POST", "example.org", headers, session=RO, path="/up/git-upload-pack")
        assert isinstance(refused, Respond) and refused.status == 403, kind


def test_the_appliances_own_identity_writes_only_what_the_owner_rules_judge() -> None:
    """One identity for titles and for pushes and pull requests: a model API takes its
    POST, a push and a GitHub API write reach the owner rules (``gitguard``), and every
    other write is refused as read-only; a read-only session gets none of that."""
    from proxy.directory import appliance_identity

    own = appliance_identity(b"k" * 32)
    assert isinstance(run("POST", "api.anthropic.com", [], session=own), Forward)
    assert isinstance(run("POST", "github.com", [], session=own,
                          path="/o/r.git/git-receive-pack"), Forward)
    assert isinstance(run("PUT", "api.github.com", [], session=own,
                          path="/repos/o/r/pulls/1/merge"), Forward)
    for method, host, path in (("POST", "example.org", "/"),
                               ("POST", "github.com", "/o/r.git/info/lfs/objects/batch"),
                               ("DELETE", "uploads.github.com", "/x")):
        refused = run(method, host, [], session=own, path=path)
        assert isinstance(refused, Respond) and refused.status == 403, (method, host)
    # A read-only session is refused the very push and merge the appliance may attempt.
    assert isinstance(run("POST", "github.com", [], session=RO,
                          path="/o/r.git/git-receive-pack"), Respond)
    assert isinstance(run("PUT", "api.github.com", [], session=RO,
                          path="/repos/o/r/pulls/1/merge"), Respond)


def test_rules_from_config_win_and_wildcards_skip_the_apex() -> None:
    config = config_from_dict({"grafana_host": "grafana.example.net", "rules": [
        {"host": "api.github.com", "credential": "npm_token", "style": "header",
         "header": "x-token"},
        {"host": "*.corp.example", "credential": "github_token"}]}, "proxy.toml")
    assert sent(run("GET", "grafana.example.net", [], config=config))[b"authorization"] == (
        b"Bearer GRAFANA")
    assert sent(run("GET", "api.github.com", [], config=config))[b"x-token"] == b"NPM"
    assert sent(run("GET", "a.corp.example", [], config=config))[b"authorization"] == b"Bearer GH"
    assert b"authorization" not in sent(run("GET", "corp.example", [], config=config))


def test_codex_refresh_rule_only_on_the_token_path() -> None:
    refresh = run("POST", "auth.openai.com", [], path="/oauth/token",
                  creds=Creds(codex_refresh_token="R"))
    assert isinstance(refresh, Forward) and refresh.rule is not None
    assert refresh.credential == "codex_refresh_token"
    other = run("GET", "auth.openai.com", [], path="/authorize")
    assert isinstance(other, Forward) and other.rule is None


def test_connect_needs_valid_credentials() -> None:
    good = ProxyCredentials(session_id="s1", token="tok")
    config = ProxyConfig()
    assert isinstance(decide_connect(target("x.org"), good, RW, config), Accept)
    for presented, session in [(None, RW), (good, None),
                               (ProxyCredentials(session_id="s1", token="nope"), RW),
                               (ProxyCredentials(session_id="s2", token="tok"), RW)]:
        verdict = decide_connect(target("x.org"), presented, session, config)
        assert isinstance(verdict, Respond)
        assert (verdict.status, verdict.decision) == (407, Decision.REJECTED)
        assert (b"proxy-authenticate", b'Basic realm="clauderon"') in verdict.headers


def test_deny_unlisted_allows_only_overrides() -> None:
    good = ProxyCredentials(session_id="s1", token="tok")
    config = ProxyConfig(deny_unlisted=True, upstreams={
        "api.anthropic.com": Upstream(scheme="https", host="127.0.0.1", port=1)})
    assert isinstance(decide_connect(target("api.anthropic.com"), good, RW, config), Accept)
    verdict = decide_connect(target("example.org"), good, RW, config)
    assert isinstance(verdict, Respond) and verdict.decision is Decision.DENIED


IP = ipaddress.ip_address


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.8.8.8", "::1", "0.0.0.0", "169.254.169.254",
                                  "fe80::1", "::ffff:127.0.0.1", "172.17.0.1", "224.0.0.1",
                                  # Cloud metadata services off link-local addresses.
                                  "fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254",
                                  "100.100.100.200", "::ffff:100.100.100.200",
                                  "168.63.129.16",
                                  # An IPv4 address spelt in IPv6: NAT64, IPv4-compatible,
                                  # 6to4, Teredo's client (127.0.0.1) and server.
                                  "64:ff9b::7f00:1", "::127.0.0.1", "2002:7f00:1::",
                                  "2002:a9fe:a9fe::", "2001:0:4136:e378:8000:63bf:80ff:fffe",
                                  "2001:0:a9fe:a9fe:8000:63bf:3fff:fdd2"])
def test_no_way_home(addr: str) -> None:
    forbidden = frozenset({IP("172.17.0.1")})
    assert address_refusal([IP(addr)], forbidden, overridden=False) is not None
    assert address_refusal([IP(addr)], forbidden, overridden=True) is None


def test_a_network_the_configuration_names_is_refused() -> None:
    cluster = (ipaddress.ip_network("10.96.0.0/12"), ipaddress.ip_network("fd00:10:96::/112"))
    for addr in ("10.96.0.1", "10.111.2.3", "::ffff:10.96.0.10", "fd00:10:96::1"):
        why = address_refusal([IP(addr)], frozenset(), overridden=False, refused=cluster)
        assert why is not None and "refuse_networks" in why
        assert address_refusal([IP(addr)], frozenset(), overridden=True, refused=cluster) is None
    # Named in both lists, refused all the same.
    why = address_refusal([IP("10.96.0.1")], frozenset(), overridden=False, refused=cluster,
                          allowed=(ipaddress.ip_network("10.0.0.0/8"),))
    assert why is not None and "refuse_networks" in why


#: The person's own networks: a LAN, a VPN, the tailnet (Tailscale's 100.64.0.0/10 and
#: fd7a:115c:a1e0::/48), a cluster's, and the benchmarking and documentation ranges; in
#: IPv6 spellings too.
PRIVATE = ["10.0.0.1", "10.112.0.1", "172.16.5.4", "172.31.255.254", "192.168.1.1",
           "100.64.0.1", "100.101.102.103", "fd7a:115c:a1e0::1", "fc00::1", "fd12:3456::1",
           "198.18.0.1", "192.0.2.7", "::ffff:192.168.1.1", "2002:c0a8:101::",
           "64:ff9b::c0a8:101"]


@pytest.mark.parametrize("addr", PRIVATE)
def test_a_private_address_is_refused_unless_allow_networks_lists_it(addr: str) -> None:
    why = address_refusal([IP(addr)], frozenset(), overridden=False)
    assert why is not None, addr
    assert address_refusal([IP(addr)], frozenset(), overridden=True) is None
    listed = tuple(ipaddress.ip_network(spelt) for spelt in spellings(IP(addr)))
    if "private address" in why:  # the rest are refused for what they are, listed or not
        assert "allow_networks" in why, why
        assert address_refusal([IP(addr)], frozenset(), overridden=False,
                               allowed=listed) is None


def test_allow_networks_opens_no_way_home() -> None:
    everything = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    for addr in ("127.0.0.1", "169.254.169.254", "100.100.100.200", "172.17.0.1", "fe80::1"):
        assert address_refusal([IP(addr)], frozenset({IP("172.17.0.1")}), overridden=False,
                               allowed=everything) is not None, addr


def test_public_addresses_pass() -> None:
    assert address_refusal([IP("140.82.112.3"), IP("1.1.1.1")], frozenset(),
                           overridden=False) is None
    assert address_refusal([IP("2002:8c52:7003::"), IP("2606:4700::1")], frozenset(),
                           overridden=False) is None  # 6to4 of a public address


def at(scheme: str, host: str, port: int, path: str = "/") -> Target:
    return Target(scheme=scheme, host=host, port=port, path=path)


@pytest.mark.parametrize(("where", "config"), [
    (at("http", "api.github.com", 80), ProxyConfig()),  # cleartext to the rule's host
    (at("http", "api.github.com", 443), ProxyConfig()),  # cleartext to the rule's port
    (at("https", "api.github.com", 8443), ProxyConfig()),  # TLS, another port
    (at("https", "api.github.com", 443), ProxyConfig(upstreams={  # TLS in, cleartext out
        "api.github.com": Upstream(scheme="http", host="gateway.corp", port=80)})),
])
def test_no_credential_and_no_placeholder_off_tls_or_off_the_rule_port(
    where: Target, config: ProxyConfig
) -> None:
    verdict = decide_request(method="GET", target=where, headers=[
        (b"host", where.authority.encode()), (b"authorization", b"Bearer placeholder")],
        session=RW, config=config, creds=ALL)
    assert isinstance(verdict, Forward)
    assert (verdict.decision, verdict.credential, verdict.rule) == (Decision.PASSED, None, None)
    assert dict(verdict.headers) == {b"host": where.authority.encode()}


def test_credentials_go_over_tls_to_the_rule_port_and_a_rule_may_name_another() -> None:
    plain = decide_request(method="GET", target=at("https", "api.github.com", 443),
                           headers=[(b"host", b"api.github.com")], session=RW,
                           config=ProxyConfig(), creds=ALL)
    assert isinstance(plain, Forward) and plain.credential == "github_token"
    config = config_from_dict({"rules": [{"host": "git.corp.example", "port": 8443,
                                          "credential": "github_token"}]}, "proxy.toml")
    for port, credential in ((8443, "github_token"), (443, None)):
        where = at("https", "git.corp.example", port)
        verdict = decide_request(method="GET", target=where,
                                 headers=[(b"host", where.authority.encode())], session=RW,
                                 config=config, creds=ALL)
        assert isinstance(verdict, Forward) and verdict.credential == credential


def test_anthropic_placeholders_are_stripped_in_cleartext() -> None:
    where = at("http", "api.anthropic.com", 80)
    verdict = decide_request(method="POST", target=where, headers=[
        (b"host", b"api.anthropic.com"), (b"x-api-key", b"placeholder"),
        (b"authorization", b"Bearer placeholder"), (b"content-type", b"application/json")],
        session=RW, config=ProxyConfig(), creds=ALL)
    assert sent(verdict) == {b"host": b"api.anthropic.com", b"content-type": b"application/json"}


TUNNEL = at("https", "api.github.com", 443)


@pytest.mark.parametrize(("where", "host"), [
    (TUNNEL, b"api.anthropic.com"),  # fronting by Host
    (TUNNEL, b"api.github.com:8443"),  # another port
    (TUNNEL, b"api.github.com:80"),
    (TUNNEL, b"api.github.com@evil"),
    (TUNNEL, b""),
    (at("https", "api.anthropic.com", 443), b"api.github.com"),  # absolute URL elsewhere
    (at("http", "api.github.com", 443), b"api.github.com:443"),  # http:// inside TLS
])
def test_a_request_naming_another_authority_than_its_tunnel_is_misdirected(
    where: Target, host: bytes
) -> None:
    verdict = decide_request(method="GET", target=where, headers=[(b"host", host)], session=RW,
                             config=ProxyConfig(), creds=ALL, tunnel=TUNNEL)
    assert isinstance(verdict, Respond)
    assert (verdict.status, verdict.decision, verdict.error_type, verdict.close) == (
        421, Decision.DENIED, "MISDIRECTED_REQUEST", True)
    assert "Misdirected" in verdict.body


@pytest.mark.parametrize("host", [b"api.github.com", b"API.GitHub.com:443", b"api.github.com."])
def test_the_same_authority_in_other_spellings_passes_and_host_is_ours(host: bytes) -> None:
    verdict = decide_request(method="GET", target=TUNNEL, headers=[(b"host", host)], session=RW,
                             config=ProxyConfig(), creds=ALL, tunnel=TUNNEL)
    assert sent(verdict)[b"host"] == b"api.github.com"


def test_plain_http_host_must_match_the_url() -> None:
    where = at("http", "example.org", 80)
    good = decide_request(method="GET", target=where, headers=[(b"host", b"Example.org:80")],
                          session=RW, config=ProxyConfig(), creds=ALL)
    assert sent(good)[b"host"] == b"example.org"
    bad = decide_request(method="GET", target=where, headers=[(b"host", b"api.github.com")],
                         session=RW, config=ProxyConfig(), creds=ALL)
    assert isinstance(bad, Respond) and bad.status == 421


def test_the_gemini_key_goes_to_its_own_host_only() -> None:
    # A hostile agent sends Gemini's header to another host, or under a look-alike name.
    for host in ("api.anthropic.com", "generativelanguage.googleapis.com.evil.example",
                 "evil.example"):
        verdict = run("POST", host, [(b"x-goog-api-key", b"placeholder")])
        assert isinstance(verdict, Forward)
        assert b"GEMINI" not in b"".join(v for _, v in verdict.headers), host
    # Its own host, read-only: a model API, so the request still goes (with the key).
    verdict = run("POST", "generativelanguage.googleapis.com",
                  [(b"x-goog-api-key", b"placeholder")], session=RO)
    assert isinstance(verdict, Forward) and sent(verdict)[b"x-goog-api-key"] == b"GEMINI"


@pytest.mark.parametrize(("host", "protocol", "relayed"), [
    ("api.github.com", b"websocket", True),  # its frames are what the masking reads
    ("api.github.com", b"WebSocket", True),
    ("api.github.com", b"h2c", False),  # HTTP/2's HPACK hides a credential from it
    ("api.github.com", b"SPDY/3.1", False),
    ("example.org", b"h2c", True),  # no credential: nothing to mask
])
def test_a_credential_rides_no_upgrade_but_a_websocket(host: str, protocol: bytes,
                                                        relayed: bool) -> None:
    verdict = decide_request(method="GET", target=at("https", host, 443), headers=[
        (b"host", host.encode()), (b"authorization", b"Bearer placeholder"),
        (b"connection", b"Upgrade"), (b"upgrade", protocol)],
        session=RW, config=ProxyConfig(), creds=ALL)
    assert isinstance(verdict, Forward)
    assert verdict.upgrade is relayed
    names = {k for k, _ in verdict.headers}
    assert (b"upgrade" in names and b"connection" in names) is relayed


#: The credentials that pay for model calls.
MODEL_CREDENTIALS = {"anthropic_oauth_token", "anthropic_api_key", "openai_api_key",
                     "codex_access_token", "codex_refresh_token", "gemini_api_key"}


def test_every_host_a_model_credential_goes_to_is_a_model_host() -> None:
    """What is called there is metered and under the budgets: a host that got a model
    credential without being a model host spent it unmetered, past any budget."""
    paying = [r for r in DEFAULT_RULES if MODEL_CREDENTIALS & set(r.credentials)]
    assert {r.host for r in paying} >= {"api.anthropic.com", "chat.openai.com"}
    assert [r.host for r in paying if not matches_any(DEFAULT_MODEL_HOSTS, r.host)] == []


@pytest.mark.parametrize(("target", "read"), [
    ("/oauth/token", "/oauth/token"),
    ("/oauth/token?grant=x/../..", "/oauth/token"),
    ("/api/", "/api/"),
    ("/", "/"),
    ("/oauth/token/../../v1/echo", "/v1/echo"),
    ("/oauth/token/%2e%2e/%2E%2E/v1/echo", "/v1/echo"),
    ("/oauth/token%2f..%2f..%2fv1", "/v1"),
    ("/oauth/token/%252e%252e/x", "/oauth/x"),
    ("/oauth/token/..;/..;/x", "/x"),
    ("/oauth/token\\..\\..\\x", "/x"),
    ("/oauth/token/./../../../../x/", "/x/"),
    ("//oauth/token", "/oauth/token"),
])
def test_a_path_as_a_server_may_read_it(target: str, read: str) -> None:
    assert server_path(target) == read


@pytest.mark.parametrize(("prefix", "path", "held"), [
    ("/oauth/token", "/oauth/token", True),
    ("/oauth/token", "/oauth/token/x", True),
    ("/oauth/token", "/oauth/token?x", True),
    ("/oauth/token", "/oauth/token;x", True),
    ("/oauth/token", "/oauth/tokens", False),
    ("/oauth/token", "/oauth/token-echo", False),
    ("/oauth/token", "/oauth/token.json", False),
    ("/oauth/token", "/oauth", False),
    ("/api/", "/api/x", True),
    ("/api/", "/api", False),
])
def test_a_rules_path_holds_whole_segments(prefix: str, path: str, held: bool) -> None:
    assert under(prefix, path) is held


@pytest.mark.parametrize(("path", "matched"), [
    ("/oauth/token", True),
    ("/oauth/token?x=1", True),
    ("/oauth/token/./", True),
    ("/oauth/token/../../v1/echo", False),
    ("/oauth/token/%2e%2e/x", False),
    ("/oauth/token%2F..%2Fx", False),
    ("/oauth/token/..;/x", False),
    ("/oauth/token\\..\\x", False),
    ("/authorize", False),
    ("/oauth/token;v=1", True),
    ("/oauth/token/", True),
    ("/oauth/token-echo", False),
    ("/oauth/tokens/v1/echo", False),
    ("/oauth/token%2e%2e/x", False),
    ("/oauth/token%3F", False),
    ("/oauth/token/%u002e%u002e/x", False),
    ("/oauth/token/%c0%ae%c0%ae/x", False),
    ("/oauth/token/..%00/x", False),
    ("/oauth/token/%252525252e/x", False),
])
def test_a_path_rule_matches_only_a_path_a_server_reads_as_its_own(path: str,
                                                                  matched: bool) -> None:
    rule = match_rule(DEFAULT_RULES, "auth.openai.com", path)
    assert (rule is not None and rule.credential == "codex_refresh_token") is matched
