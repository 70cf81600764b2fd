"""proxy.toml: overrides, flags, rules, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from proxy.pace import Pace
from proxy.proxy_config import ProxyConfig, Upstream, config_from_dict, load_proxy_config
from proxy.rules import Style


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_proxy_config(tmp_path / "proxy.toml") == ProxyConfig()


def test_full_file(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    path = tmp_path / "proxy.toml"
    path.write_text(f'''
deny_unlisted = true
extra_ca_bundle = "{bundle}"
grafana_host = "grafana.example.net"
read_timeout_seconds = 30
[upstreams]
"api.anthropic.com" = "https://127.0.0.1:8443"
"github.com:443" = "http://gateway.corp"
[onepassword]
enabled = false
[[rules]]
host = "api.example.com"
credential = "example_token"
style = "token-token"
port = 8443
''')
    config = load_proxy_config(path)
    assert config.deny_unlisted and config.extra_ca_bundle == bundle
    assert config.read_timeout == 30
    assert config.override_for("api.anthropic.com", 443) == Upstream(
        scheme="https", host="127.0.0.1", port=8443)
    assert config.override_for("github.com", 443) == Upstream(
        scheme="http", host="gateway.corp", port=80)
    assert config.rules[0].host == "grafana.example.net"
    assert config.rules[1].style is Style.TOKEN_TOKEN
    assert (config.rules[1].port, config.rules[0].port) == (8443, 443)


@pytest.mark.parametrize(("text", "needle"), [
    ("bogus = 1", "unknown key 'bogus' .known: allow_networks, allow_writes, audit_bytes_per_day, "
                  "connect_timeout_seconds, deny_unlisted"),
    ("allow_writes = 'npm_token'", "list of credential names"),
    ("allow_writes = ['npm_tokn']", r"allow_writes: unknown key 'npm_tokn'"),
    ("[[rules]]\nhost = 'a'\ncredential = 'c'\nhots = 'b'",
     r"\[\[rules\]\]: unknown key 'hots' \(known: credential, header, host, path"),
    ("deny_unlisted = 'yes'", "deny_unlisted"),
    ("[upstreams]\n'a' = 'ftp://x'", "https://host"),
    ("[[rules]]\nhost = 'a'\nstyle = 'weird'\ncredential = 'c'", "style"),
    ("[[rules]]\nhost = 'a'", "credential"),
    ("[[rules]]\nhost = 'a'\ncredential = 'c'\nport = 0", "port"),
    ("[[rules]]\nhost = 'a'\ncredential = 'c'\nport = '443'", "port"),
    ("connect_timeout_seconds = -1", "positive"),
    ("not toml [", "TOML"),
    ("[paces]\ngithub_tokn = 10", r"paces: unknown key 'github_tokn' \(known: .*github_token"),
    ("[paces]\ngithub_token = -1", "whole number of requests an hour"),
    ("[paces]\ngithub_token = 1.5", "whole number of requests an hour"),
    ("paces = 3", "table of credential"),
    ("[paces]\ngithub_token = { per_hour = 60, brust = 2 }", "unknown key 'brust'"),
    ("[paces]\ngithub_token = { burst = 2 }", "whole number"),
    ("pace_hold_seconds = 0", "positive"),
    ("refuse_networks = '10.0.0.0/8'", "list of networks"),
    ("tunnels_per_hour = 0", "whole number of tunnels an hour"),
    ("tunnels_per_hour = 1.5", "whole number of tunnels an hour"),
    ("audit_bytes_per_day = -1", "whole number of bytes"),
    ("audit_bytes_per_day = '1G'", "whole number of bytes"),
    ("refuse_networks = ['10.0.0.0/33']", "refuse_networks: .*10.0.0.0/33"),
    ("allow_networks = ['192.168.1.300']", "allow_networks: .*192.168.1.300"),
])
def test_errors_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_proxy_config(path)


def test_paces_change_the_defaults_one_credential_at_a_time(tmp_path: Path) -> None:
    assert ProxyConfig().paces == {"github_token": Pace(1200)}
    path = tmp_path / "proxy.toml"
    path.write_text("pace_hold_seconds = 5\nallow_writes = ['npm_token']\n"
                    "[paces]\nnpm_token = 600\n"
                    "[[rules]]\nhost = 'x.example'\ncredential = 'x_key'\n")
    config = load_proxy_config(path)
    assert config.paces == {"github_token": Pace(1200), "npm_token": Pace(600)}
    assert config.pace_hold == 5 and config.allow_writes == {"npm_token"}
    assert ProxyConfig().allow_writes == frozenset()
    path.write_text("[paces]\ngithub_token = 0\nx_key = { per_hour = 60, burst = 2 }\n"
                    "[[rules]]\nhost = 'x.example'\ncredential = 'x_key'\n")
    assert load_proxy_config(path).paces == {"x_key": Pace(60, 2)}


def test_refused_networks_are_read_as_networks(tmp_path: Path) -> None:
    assert ProxyConfig().refuse_networks == ()
    path = tmp_path / "proxy.toml"
    path.write_text("refuse_networks = ['10.96.0.0/12', 'fd00:10:96::/112', '10.244.1.7']\n")
    assert [str(n) for n in load_proxy_config(path).refuse_networks] == [
        "10.96.0.0/12", "fd00:10:96::/112", "10.244.1.7/32"]
    assert ProxyConfig().allow_networks == ()
    path.write_text("allow_networks = ['192.168.1.20', 'fd7a:115c:a1e0::/48']\n")
    assert [str(n) for n in load_proxy_config(path).allow_networks] == [
        "192.168.1.20/32", "fd7a:115c:a1e0::/48"]


def test_new_tunnels_have_a_pace_a_file_may_change() -> None:
    assert ProxyConfig().tunnel_pace == Pace(36_000, 64)
    doc = config_from_dict({"tunnels_per_hour": 7200}, "proxy.toml")
    assert doc.tunnel_pace == Pace(7200, 64)


def test_a_sessions_audit_lines_have_a_bound_a_file_may_change() -> None:
    assert ProxyConfig().audit_bytes_per_day == 256 << 20
    assert config_from_dict({"audit_bytes_per_day": 0}, "t").audit_bytes_per_day == 0
    assert config_from_dict({"audit_bytes_per_day": 4096}, "t").audit_bytes_per_day == 4096
