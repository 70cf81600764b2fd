"""The API never listens beyond loopback without sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.server import main_config
from appliance.config import Settings
from appliance.errors import ConfigError


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_is_served(tmp_path: Path, host: str) -> None:
    config = main_config(Settings(home=tmp_path, http_host=host))
    assert f"{host}:3030" in config.bind


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "myhost.example"])
def test_other_addresses_are_refused_with_the_way_out(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="tailscale serve"):
        main_config(Settings(home=tmp_path, http_host=host))


def test_http_can_be_turned_off_whatever_the_host(tmp_path: Path) -> None:
    config = main_config(Settings(home=tmp_path, http_host="0.0.0.0", http_port=0))
    assert config.bind == [f"unix:{tmp_path / 'clauderon.sock'}"]
