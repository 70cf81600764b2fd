"""Settings: defaults, CLAUDERON_HOME, config.toml, environment overrides, the layout."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.config import DEFAULT_IMAGE, Settings, load_settings
from appliance.errors import ConfigError


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def refused(home: Path, text: str) -> ConfigError:
    """The error a load gives for ``text`` as the config file; it names the file."""
    path = write_config(home, text)
    with pytest.raises(ConfigError) as info:
        load_settings({"CLAUDERON_HOME": str(home)})
    assert str(path) in info.value.message
    return info.value


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.http_host == "127.0.0.1"
    assert s.http_port == 3030
    assert s.proxy_port == 3128
    assert s.default_image == DEFAULT_IMAGE
    assert s.docker_host is None
    assert s.default_cpu == min(2.0, os.cpu_count() or 1)
    assert s.default_memory == "4g"
    assert s.pids_limit == 1024
    assert s.docker_network is None and s.network_subnet is None
    assert s.max_attempts == 3
    assert s.keep_events_days == 30
    assert s.shipper_keep_days == 90
    assert s.container_connections == 256
    assert dict(s.extra) == {}


def test_home_defaults_to_dot_clauderon_in_home(tmp_path: Path) -> None:
    assert load_settings({"HOME": str(tmp_path)}).home == tmp_path / ".clauderon"


def test_clauderon_home_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({"CLAUDERON_HOME": "rel/home"})
    assert s.home == tmp_path / "rel" / "home"
    assert s.db_path == tmp_path / "rel" / "home" / "db.sqlite"


def test_config_toml_values(tmp_path: Path) -> None:
    write_config(tmp_path, """
[server]
host = "0.0.0.0"
port = 4040
[proxy]
port = 4128
[docker]
image = "clauderon-agent:dev"
cpu = 2
memory = "4g"
host = "unix:///tmp/docker.sock"
[reconciler]
max_attempts = 5
backoff_seconds = 1.5
[ui]
theme = "dark"
""")
    s = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    assert s.http_host == "0.0.0.0"
    assert s.http_port == 4040
    assert s.proxy_port == 4128
    assert s.default_image == "clauderon-agent:dev"
    assert s.default_cpu == 2.0
    assert isinstance(s.default_cpu, float)
    assert s.default_memory == "4g"
    assert s.docker_host == "unix:///tmp/docker.sock"
    assert s.max_attempts == 5
    assert s.backoff_seconds == 1.5
    assert dict(s.extra) == {"ui": {"theme": "dark"}}


def test_unknown_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    error = refused(tmp_path, "[server]\nprot = 1\n")
    assert "prot" in error.message
    assert "port" in error.message  # the known keys are listed


def test_wrong_type_names_the_file_and_key(tmp_path: Path) -> None:
    error = refused(tmp_path, '[server]\nport = "many"\n')
    assert "port" in error.message


def test_table_that_is_not_a_table(tmp_path: Path) -> None:
    write_config(tmp_path, "server = 3\n")
    with pytest.raises(ConfigError, match=r"\[server\]"):
        load_settings({"CLAUDERON_HOME": str(tmp_path)})


def test_invalid_toml(tmp_path: Path) -> None:
    error = refused(tmp_path, "[server\nport = \n")
    assert error.exit_code == 78


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, '[server]\nport = 4040\nhost = "10.0.0.1"\n[docker]\nimage = "a"\n')
    s = load_settings({
        "CLAUDERON_HOME": str(tmp_path), "CLAUDERON_HTTP_PORT": "5050",
        "CLAUDERON_IMAGE": "b", "DOCKER_HOST": "tcp://127.0.0.1:2375",
    })
    assert s.http_port == 5050
    assert s.default_image == "b"
    assert s.docker_host == "tcp://127.0.0.1:2375"
    assert s.http_host == "10.0.0.1"  # not overridden: the file still counts


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CLAUDERON_PROXY_PORT"):
        load_settings({"CLAUDERON_HOME": str(tmp_path), "CLAUDERON_PROXY_PORT": "x"})


def test_explicit_overrides_win(tmp_path: Path) -> None:
    s = load_settings({"CLAUDERON_HOME": str(tmp_path), "CLAUDERON_HTTP_PORT": "5050"},
                      http_port=0)
    assert s.http_port == 0


def test_paths_all_under_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    paths = s.paths()
    assert paths["home"] == s.home
    for name, path in paths.items():
        assert path == s.home or s.home in path.parents, name
    assert len(set(paths.values())) == len(paths)
    for extra in (s.instance_secret_path, s.config_path, s.ca_key_path):
        assert s.home in extra.parents


#: As root, the folders that hold per-session trees are traverse-only for the repository
#: owners git runs as; everything else stays the appliance's alone.
SHARED = 0o711 if os.geteuid() == 0 else 0o700


def test_ensure_layout_modes(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    s.ensure_layout()
    s.ensure_layout()  # idempotent
    assert stat.S_IMODE(s.home.stat().st_mode) == SHARED
    for d in (s.worktrees_dir, s.uploads_dir, s.homes_dir, s.shadows_dir):
        assert stat.S_IMODE(d.stat().st_mode) == SHARED, d
    for d in (s.secrets_dir, s.logs_dir, s.runtime_dir, s.kept_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_ensure_layout_tightens_a_loose_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    s.home.mkdir(mode=0o755)
    s.secrets_dir.mkdir(mode=0o777)
    s.secrets_dir.chmod(0o777)
    s.ensure_layout()
    assert stat.S_IMODE(s.home.stat().st_mode) == SHARED
    assert stat.S_IMODE(s.secrets_dir.stat().st_mode) == 0o700


def test_public_dict_is_plain_json(tmp_path: Path) -> None:
    d = Settings(home=tmp_path).public_dict()
    assert d["home"] == str(tmp_path)
    assert d["http_port"] == 3030
    assert d["extra"] == {}


def test_bad_default_limits_are_refused_when_loaded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[docker]\nmemory = "lots"\n')
    with pytest.raises(ConfigError, match=r"\[docker\]: memory 'lots' is not a size"):
        load_settings({"CLAUDERON_HOME": str(home)})
    (home / "config.toml").write_text("[docker]\ncpu = 0\n")
    with pytest.raises(ConfigError, match="positive number of CPUs"):
        load_settings({"CLAUDERON_HOME": str(home)})


@pytest.mark.parametrize(("text", "message"), [
    ("[docker]\npids_limit = 0\n", "pids_limit = 0 must be a positive number"),
    ("[docker]\npids_limit = -5\n", "pids_limit = -5 must be a positive number"),
    ('[docker]\npids_limit = "lots"\n', "not a valid value for pids_limit"),
    ("[docker]\ncpu = -1\n", "positive number of CPUs"),
    ('[docker]\ncpu = ""\n', "not a valid value for default_cpu"),
    ("[docker]\ncpu = true\n", "not a valid value for default_cpu"),
    ('[docker]\nmemory = "-4g"\n', "memory '-4g' is not a size"),
    ('[docker]\nmemory = ""\n', "memory '' is not a size"),
    ('[docker]\nnetwork = "bad name!"\n', "is not a Docker network name"),
    ('[docker]\nsubnet = "10.1.2.3/24"\n', "is not a network like"),
    ('[docker]\nsubnet = "fd00::/64"\n', "must be an IPv4 network"),
    ('[docker]\nsubnet = "10.1.2.0/30"\n', "must be an IPv4 network"),
    ("[docker]\npid_limit = 10\n", "[docker]: unknown key 'pid_limit'"),
    ('[proxy]\nbridge_gateway = "172.17.0.1"\n', "[proxy]: unknown key 'bridge_gateway'"),
    ("[reconciler]\nkeep_events_days = -1\n", "keep_events_days = -1.0 must be a number of "
                                               "days, or 0 to keep every event"),
    ("[reconciler]\nkeep_events_days = nan\n", "keep_events_days = nan must be"),
    ("[reconciler]\nkeep_hook_events = -1\n", "keep_hook_events = -1 must be a number of "
                                               "events, or 0 to keep every one"),
    ("[shipper]\nkeep_days = -1\n", "[shipper] keep_days = -1 must be a number of days to "
                                      "keep the audit archive, or 0 to keep it forever"),
    ("[shipper]\nkeep_days = 1.5\n", "not a valid value for shipper_keep_days"),
    ("[docker]\nmax_connections = 0\n", "max_connections = 0 must be a positive number"),
])
def test_bad_limits_and_network_settings_are_clear(tmp_path: Path, text: str,
                                                   message: str) -> None:
    error = refused(tmp_path, text)
    assert message in error.message
    assert error.exit_code == 78


def test_limits_and_network_from_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, '[docker]\npids_limit = 200\nnetwork = "agents"\n'
                           'subnet = "10.213.0.0/24"\ncpu = 0.5\nmemory = "1g"\n'
                           'max_connections = 40\n')
    s = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    assert (s.pids_limit, s.docker_network, s.network_subnet) == (200, "agents",
                                                                  "10.213.0.0/24")
    assert (s.default_cpu, s.default_memory) == (0.5, "1g")
    assert s.container_connections == 40
