"""Where the API listens: any address now that sign-in guards TCP, HTTPS from a given
certificate, a clear warning for plain HTTP beyond loopback, and a bad certificate refused
at start with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from api.listeners import (
    check_tls,
    exposure_warning,
    loopback_binds,
    tcp_config,
    unix_config,
)
from appliance.config import Settings, load_settings
from appliance.errors import ConfigError


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_is_served_without_a_warning(tmp_path: Path, host: str) -> None:
    settings = Settings(home=tmp_path, http_host=host)
    config = tcp_config(settings)
    assert config is not None and config.bind
    assert exposure_warning(settings) is None


#: ``localhost`` is ::1 first, then 127.0.0.1, to a browser: a host the CLI prints as
#: ``localhost`` holds both, so no local user's server can be the origin it sends the
#: person to ("::" holds both already).
@pytest.mark.parametrize(("host", "ipv6", "binds"), [
    ("127.0.0.1", True, ["127.0.0.1:3030", "[::1]:3030"]),
    ("127.0.0.1", False, ["127.0.0.1:3030"]),
    ("::1", True, ["[::1]:3030", "127.0.0.1:3030"]),
    ("[::1]", True, ["[::1]:3030", "127.0.0.1:3030"]),
    ("localhost", True, ["127.0.0.1:3030", "[::1]:3030"]),
    ("localhost", False, ["127.0.0.1:3030"]),
    ("127.0.0.2", True, ["127.0.0.2:3030", "127.0.0.1:3030", "[::1]:3030"]),
    ("0.0.0.0", True, ["0.0.0.0:3030", "[::1]:3030"]),
    ("0.0.0.0", False, ["0.0.0.0:3030"]),
    ("::", True, ["[::]:3030"]),
    ("100.64.0.1", True, ["100.64.0.1:3030"]),
    ("myhost.example", True, ["myhost.example:3030"]),
])
def test_a_loopback_host_listens_on_both_loopbacks(host: str, ipv6: bool,
                                                   binds: list[str]) -> None:
    assert loopback_binds(host, 3030, ipv6=ipv6) == binds


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "myhost.example"])
def test_other_addresses_are_served_with_a_warning_without_tls(tmp_path: Path,
                                                              host: str) -> None:
    settings = Settings(home=tmp_path, http_host=host)
    config = tcp_config(settings)
    assert config is not None and config.bind and not config.ssl_enabled
    warning = exposure_warning(settings)
    assert warning is not None
    assert "in clear" in warning and "tls_cert" in warning and "tailscale serve" in warning


def test_tls_from_a_certificate_and_key(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("box.example")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    (tmp_path / "config.toml").write_text(
        f'[server]\nhost = "0.0.0.0"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        'public_names = ["box.example"]\n')
    settings = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    check_tls(settings)
    config = tcp_config(settings)
    assert config is not None and config.ssl_enabled
    assert exposure_warning(settings) is None
    assert settings.public_names == ("box.example",)
    # The Unix socket never gets TLS.
    assert not unix_config(settings).ssl_enabled


def test_a_bad_certificate_pair_is_one_clear_line(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    with pytest.raises(ConfigError, match="tls_cert/tls_key cannot be used"):
        check_tls(Settings(home=tmp_path, tls_cert=str(cert), tls_key=str(key)))
    (tmp_path / "config.toml").write_text(f'[server]\ntls_cert = "{cert}"\n')
    with pytest.raises(ConfigError, match="set both tls_cert and tls_key"):
        load_settings({"CLAUDERON_HOME": str(tmp_path)})


@pytest.mark.parametrize("bad", ['"box.example"', '["https://box.example"]',
                                 '["box.example:443"]', "[1]"])
def test_public_names_are_bare_host_names(tmp_path: Path, bad: str) -> None:
    (tmp_path / "config.toml").write_text(f"[server]\npublic_names = {bad}\n")
    if bad == '"box.example"':  # one name as a string is fine (the environment's form)
        assert load_settings({"CLAUDERON_HOME": str(tmp_path)}).public_names == (
            "box.example",)
        return
    with pytest.raises(ConfigError, match=r"public_names|host name"):
        load_settings({"CLAUDERON_HOME": str(tmp_path)})


def test_http_can_be_turned_off(tmp_path: Path) -> None:
    assert tcp_config(Settings(home=tmp_path, http_host="0.0.0.0", http_port=0)) is None
    assert unix_config(Settings(home=tmp_path)).bind == [f"unix:{tmp_path / 'clauderon.sock'}"]
