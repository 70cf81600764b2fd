"""flake.nix: parsed by the real Nix, and its outputs evaluated offline against a test double.

nixpkgs cannot be fetched on a machine without the network, so nothing is built here. The
test double of nixpkgs (``tests/fakes/nixpkgs/default.nix``) provides only the functions the
flake calls, checks their arguments (as nixpkgs would at evaluation or build time, and
stricter where nixpkgs would quietly accept a typo) and records what each output was built
from; ``evaluate.nix`` checks the flake output schema and stands in for the NixOS module
system. These tests read that record, and feed what the flake hands the appliance (its
environment, its supervisord.conf) to the real code that reads it.

What this cannot show: that nixpkgs' builders succeed (the wheel builds, npm installs offline,
the image loads). The README says so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.config import Settings, load_settings
from cli.commands import build_parser
from cli.host_commands import cmd_daemon, find_supervisord_conf
from cli.status import cmd_status

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "fakes" / "nixpkgs"
SYSTEMS = ("x86_64-linux", "aarch64-linux")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def nix_eval(flake_dir: Path = ROOT, settings: str = "{ enable = true; }",
             docker: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode",
            str(DOUBLE / "evaluate.nix"), "--arg", "flakeDir", str(flake_dir),
            "--arg", "moduleSettings", settings]
    if docker is not None:
        argv += ["--arg", "dockerEnable", docker]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def evaluate(flake_dir: Path = ROOT, settings: str = "{ enable = true; }",
             docker: str | None = None) -> dict[str, Any]:
    out = nix_eval(flake_dir, settings, docker)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def name_of(store_path: str) -> str:
    """``/nix/store/<hash>-git/bin/git`` -> ``git``."""
    assert store_path.startswith("/nix/store/"), store_path
    return store_path.removeprefix("/nix/store/").split("/")[0].split("-", 1)[1]


def names(store_paths: list[str]) -> set[str]:
    return {name_of(p) for p in store_paths}


DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def flake() -> dict[str, Any]:
    return evaluate()


def pkgs(flake: dict[str, Any], system: str = "x86_64-linux") -> dict[str, Any]:
    packages: dict[str, Any] = flake["packages"][system]
    return packages


# --- the real Nix ------------------------------------------------------------------


def test_flake_module_and_double_parse_with_the_real_nix() -> None:
    for path in ("flake.nix", "nix/module.nix", "tests/fakes/nixpkgs/default.nix",
                 "tests/fakes/nixpkgs/evaluate.nix"):
        out = subprocess.run(["nix-instantiate", "--parse", str(ROOT / path)],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{path}: {out.stderr}"


def test_flake_pins_a_nixos_release() -> None:
    out = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr",
                          f"(import {ROOT}/flake.nix).inputs"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"github:NixOS/nixpkgs/nixos-\d\d\.\d\d",
                        json.loads(out.stdout)["nixpkgs"]["url"])


# --- packages ----------------------------------------------------------------------


def test_every_system_has_every_package_built_for_it(flake: dict[str, Any]) -> None:
    assert set(flake["outputs"]) == {"packages", "apps", "devShells", "checks", "nixosModules"}
    for system in SYSTEMS:
        p = pkgs(flake, system)
        assert set(p) == {"clauderon", "webui", "appliance", "appliance-image", "default"}
        assert p["default"]["storePath"] == p["appliance"]["storePath"]
        assert {d["system"] for d in p.values()} == {system}
        assert p["clauderon"]["args"]["version"] == VERSION


def test_web_ui_is_built_from_the_lock_file_with_no_hash_to_maintain(
        flake: dict[str, Any]) -> None:
    webui = pkgs(flake)["webui"]
    args = webui["args"]
    deps = flake["derivations"][args["npmDeps"]]
    assert deps["kind"] == "npm-deps"
    assert deps["args"]["npmRoot"] == str(ROOT / "api" / "web")
    # The lock is written without URLs; each comes from the package's name and version, as
    # the registry names its tarballs (an alias and a nested copy included), and fetchurl
    # checks it against the lock's integrity.
    resolved = deps["args"]["resolved"]
    registry = "https://registry.npmjs.org/"
    assert resolved["node_modules/typescript-7"] == registry + "typescript/-/typescript-7.0.2.tgz"
    assert resolved["node_modules/@typescript-eslint/parser"] == (
        registry + "@typescript-eslint/parser/-/parser-8.74.0.tgz")
    assert resolved["node_modules/@typescript-eslint/typescript-estree/node_modules/semver"] == (
        registry + "semver/-/semver-7.8.6.tgz")
    lock = json.loads((ROOT / "api/web/package-lock.json").read_text())["packages"]
    assert set(resolved) == set(lock)
    assert all(url.startswith(registry) for path, url in resolved.items() if path)
    assert not [k for k in args if "hash" in k.lower()]
    assert {"npm-config-hook", "nodejs-22.22.0"} <= names(args["nativeBuildInputs"])
    assert args["src"]["source"]["root"] == str(ROOT / "api" / "web")
    assert "npm run build" in args["buildPhase"]
    # The install copies what vite writes: the project's own outDir, which the API serves.
    assert 'outDir: "../static"' in (ROOT / "api/web/vite.config.ts").read_text()
    assert 'cp -r ../static "$out"' in args["installPhase"]
    assert "build" in json.loads((ROOT / "api/web/package.json").read_text())["scripts"]


def test_python_package_carries_the_built_web_ui(flake: dict[str, Any]) -> None:
    clauderon, webui = pkgs(flake)["clauderon"], pkgs(flake)["webui"]
    args = clauderon["args"]
    assert f"cp -r --no-preserve=mode {webui['storePath']} api/static" in args["postPatch"]
    assert "static/**/*" in PYPROJECT["tool"]["setuptools"]["package-data"]["api"]
    assert "lib/python3.13/site-packages/api/static/index.html" in args["postInstall"]
    assert args["passthru"]["webui"] == webui["storePath"]


def test_sources_hold_what_the_builds_need_and_no_local_build_output(tmp_path: Path) -> None:
    """A checkout with a built api/static/ and an installed node_modules/: neither reaches
    the Nix builds."""
    add = lambda text: "built locally"  # noqa: E731
    top = tree(tmp_path, {"api/static/index.html": add,
                          "api/web/node_modules/vite/package.json": add})
    built = pkgs(evaluate(top))
    source = built["clauderon"]["args"]["src"]["source"]
    assert source["root"] == str(top)

    def included(rel: str) -> bool:
        return any((rel == t["path"] or rel.startswith(t["path"] + "/"))
                   and not any(rel == e or rel.startswith(e + "/") for e in t["except"])
                   for t in source["files"])

    needed = ["pyproject.toml", PYPROJECT["project"]["readme"], "api/__init__.py"]
    needed += [f for files in PYPROJECT["tool"]["setuptools"]["data-files"].values()
               for f in files]
    needed += [f"{pkg}/__init__.py" for pkg in ("appliance", "proxy", "cli")]
    assert [f for f in needed if not included(f)] == []
    assert not included("api/web/package.json")
    assert not included("api/static/index.html")
    assert not included("tests/unit/test_flake.py")
    web = built["webui"]["args"]["src"]["source"]
    assert (web["root"], web["files"]) == (
        str(top / "api" / "web"), [{"path": ".", "except": ["node_modules"]}])


def test_python_dependencies_are_pyprojects(flake: dict[str, Any]) -> None:
    args = pkgs(flake)["clauderon"]["args"]
    wanted = {requirement_name(d) for d in PYPROJECT["project"]["dependencies"]}
    assert {n.removeprefix("python3.13-") for n in names(args["dependencies"])} == wanted
    build = {requirement_name(d) for d in PYPROJECT["build-system"]["requires"]}
    assert {n.removeprefix("python3.13-") for n in names(args["build-system"])} == build
    assert args["pythonImportsCheck"] == ["appliance", "api", "proxy", "cli"]


def test_installed_package_runs_its_own_supervisord_conf_and_scripts(
        flake: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed by Nix, sys.prefix is the interpreter's: the wrapper names the config, and
    the config names the package's own console scripts, whatever CLAUDERON_BIN says."""
    args = pkgs(flake)["clauderon"]["args"]
    wrapper = args["makeWrapperArgs"]
    i = wrapper.index("--set-default")
    assert wrapper[i + 1] == "CLAUDERON_SUPERVISORD_CONF"
    assert wrapper[i + 2].endswith("/share/clauderon/supervisord.conf")
    assert PYPROJECT["tool"]["setuptools"]["data-files"]["share/clauderon"] == ["supervisord.conf"]
    path = wrapper[wrapper.index("--prefix") + 3].split(":")
    assert {"python3.13-supervisor", "git", "docker-client", "tmux", "iptables"} <= names(path)

    # The variable the wrapper sets is the one `clauderon daemon` reads.
    conf = tmp_path / "share" / "clauderon" / "supervisord.conf"
    conf.parent.mkdir(parents=True)
    token = re.search(r"--replace-fail '([^']+)' \"\$out/bin\"", args["postInstall"])
    assert token is not None, args["postInstall"]
    conf.write_text((ROOT / "supervisord.conf").read_text().replace(token[1], "/out/bin"))
    monkeypatch.setenv("CLAUDERON_SUPERVISORD_CONF", str(conf))
    assert find_supervisord_conf() == conf

    # supervisord itself reads the substituted file: each program is our console script.
    from supervisor.options import ServerOptions

    (tmp_path / "logs").mkdir()
    monkeypatch.setenv("CLAUDERON_HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDERON_BIN", raising=False)
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)
    commands = {p.command for g in options.process_group_configs for p in g.process_configs}
    # Every console script but the people's command and the image's start-up check.
    scripts = {s for s in PYPROJECT["project"]["scripts"]
               if s not in ("clauderon", "clauderon-preflight")}
    assert commands == {f"/out/bin/{s}" for s in scripts}


def test_nix_run_starts_the_appliance(flake: dict[str, Any]) -> None:
    p = pkgs(flake)
    assert p["appliance"]["args"]["text"] == (
        f'exec {p["clauderon"]["storePath"]}/bin/clauderon daemon "$@"\n')
    assert build_parser().parse_args(["daemon"]).handler is cmd_daemon
    for system in SYSTEMS:
        apps = flake["apps"][system]
        assert apps["default"]["program"] == (
            f'{pkgs(flake, system)["appliance"]["storePath"]}/bin/clauderon-appliance')
        assert apps["clauderon"]["program"] == (
            f'{pkgs(flake, system)["clauderon"]["storePath"]}/bin/clauderon')


def test_image_is_the_appliance_under_an_init(flake: dict[str, Any]) -> None:
    p = pkgs(flake)
    image, clauderon = p["appliance-image"], p["clauderon"]["storePath"]
    args, config = image["args"], image["args"]["config"]
    assert (image["imageName"], image["imageTag"]) == ("clauderon-appliance", VERSION)
    assert {"clauderon-" + VERSION, "python3.13-supervisor", "git", "tmux", "docker-client",
            "tini", "iptables"} <= names(args["contents"])
    tini = config["Entrypoint"][0]
    assert name_of(tini) == "tini" and tini.endswith("/bin/tini")
    assert config["Entrypoint"][1:] == ["--"]
    # As images/appliance/Dockerfile: the preflight checks the deployment, then becomes the
    # daemon (both console scripts of the package).
    assert config["Cmd"] == [f"{clauderon}/bin/clauderon-preflight", f"{clauderon}/bin/clauderon",
                             "daemon"]
    assert "clauderon-preflight" in PYPROJECT["project"]["scripts"]
    assert config["Healthcheck"]["Test"] == ["CMD", f"{clauderon}/bin/clauderon", "status"]
    assert build_parser().parse_args(["status"]).handler is cmd_status
    # No VOLUME: an anonymous volume would hide that the data folder must be the host's.
    assert "Volumes" not in config

    env = dict(e.split("=", 1) for e in config["Env"])
    settings = load_settings(env=env)
    assert settings.home == Path("/var/lib/clauderon")
    dockerfile = (ROOT / "images" / "appliance" / "Dockerfile").read_text()
    for key in ("CLAUDERON_HOME", "DOCKER_HOST", "CLAUDERON_BIND_ADDR"):
        assert f"{key}={env[key]}" in dockerfile, key
    assert config["ExposedPorts"] == {f"{settings.http_port}/tcp": {}}
    assert settings.http_port == DEFAULTS["http_port"] == 3030


def test_dev_shell_carries_node_the_test_tools_and_the_runtime(flake: dict[str, Any]) -> None:
    shell = flake["devShells"]["x86_64-linux"]["default"]["args"]["packages"]
    tools = names(shell)
    assert {"nodejs-22.22.0", "nix", "git", "tmux", "docker-client", "curl", "py-spy"} <= tools
    env = next(p for p in shell if name_of(p) == "python3-3.13-env")
    python = {n.removeprefix("python3.13-")
              for n in names(flake["derivations"][env]["args"]["packages"])}
    runtime = {requirement_name(d) for d in PYPROJECT["project"]["dependencies"]}
    dev = {requirement_name(d) for d in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    # types-docker is not in nixpkgs; py-spy is a tool, in the shell beside Python.
    assert runtime | (dev - {"types-docker", "py-spy"}) <= python


def test_checks_build_the_package_and_the_web_ui(flake: dict[str, Any]) -> None:
    for system in SYSTEMS:
        checks = {n: c["storePath"] for n, c in flake["checks"][system].items()}
        p = pkgs(flake, system)
        assert checks == {"package": p["clauderon"]["storePath"], "webui": p["webui"]["storePath"]}


# --- the NixOS module ----------------------------------------------------------------


def service(result: dict[str, Any]) -> dict[str, Any]:
    unit: dict[str, Any] = result["module"]["config"]["systemd"]["services"]["clauderon"]
    return unit


def test_module_options_are_typed_and_documented(flake: dict[str, Any]) -> None:
    options = flake["module"]["options"]
    assert {"enable", "package", "dataDir", "host", "port", "dockerSocket",
            "environmentFile", "environment", "user", "group"} <= set(options)
    assert [n for n, o in options.items() if not (o["type"] and o["description"])] == []
    assert options["enable"]["default"] is False
    assert options["package"]["default"] == pkgs(flake)["clauderon"]["storePath"]
    assert (options["host"]["default"], options["port"]["default"]) == (
        DEFAULTS["http_host"], DEFAULTS["http_port"])


def test_module_runs_the_appliance_as_a_systemd_service(flake: dict[str, Any]) -> None:
    config = flake["module"]["config"]
    unit = service(flake)
    package = pkgs(flake)["clauderon"]["storePath"]
    assert unit["serviceConfig"]["ExecStart"] == f"{package}/bin/clauderon daemon"
    assert unit["wantedBy"] == ["multi-user.target"]
    assert "docker.service" in unit["requires"] and "docker.service" in unit["after"]
    assert unit["serviceConfig"]["SupplementaryGroups"] == ["docker"]
    assert unit["serviceConfig"]["User"] == "clauderon"
    assert unit["serviceConfig"]["EnvironmentFile"] == []
    # The sessions' firewall needs these, as a non-root service (iptables is on its PATH).
    assert unit["serviceConfig"]["AmbientCapabilities"] == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    assert config["virtualisation"]["docker"]["enable"] is True
    assert config["users"]["users"]["clauderon"]["isSystemUser"] is True
    assert config["systemd"]["tmpfiles"]["rules"] == [
        "d '/var/lib/clauderon' 0700 clauderon clauderon - -"]
    assert package in config["environment"]["systemPackages"]

    settings = load_settings(env=unit["environment"])
    assert settings.home == Path("/var/lib/clauderon")
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 3030)
    assert settings.docker_host == "unix:///run/docker.sock"


def test_module_follows_its_options() -> None:
    result = evaluate(settings='{ enable = true; dataDir = "/srv/clauderon"; port = 8080; '
                               'host = "100.64.0.1"; dockerSocket = "/run/user/1000/docker.sock"; '
                               'environmentFile = "/run/secrets/clauderon.env"; '
                               'environment = { CLAUDERON_PROXY_PORT = "3129"; }; '
                               'user = "alice"; group = "users"; }')
    unit = service(result)
    assert unit["serviceConfig"]["EnvironmentFile"] == ["/run/secrets/clauderon.env"]
    assert (unit["serviceConfig"]["User"], unit["serviceConfig"]["Group"]) == ("alice", "users")
    assert unit["serviceConfig"]["WorkingDirectory"] == "/srv/clauderon"
    assert result["module"]["config"]["users"] == {"users": {}, "groups": {}}
    assert result["module"]["config"]["systemd"]["tmpfiles"]["rules"] == [
        "d '/srv/clauderon' 0700 alice users - -"]
    settings = load_settings(env=unit["environment"])
    assert settings.home == Path("/srv/clauderon")
    assert (settings.http_host, settings.http_port) == ("100.64.0.1", 8080)
    assert settings.docker_host == "unix:///run/user/1000/docker.sock"
    assert settings.proxy_port == 3129


def test_module_without_docker_neither_requires_nor_joins_it() -> None:
    unit = service(evaluate(docker="false"))
    assert unit["requires"] == [] and "docker.service" not in unit["after"]
    assert unit["serviceConfig"]["SupplementaryGroups"] == []


def test_module_disabled_defines_nothing() -> None:
    assert evaluate(settings="{ }")["module"]["config"] == {}


@pytest.mark.parametrize(("settings", "error"), [
    # Credentials never go where every local user can read them.
    ('environmentFile = "/nix/store/00000000000000000000000000000000-clauderon.env";',
     "must be an absolute path outside the Nix store"),
    ("environmentFile = ./clauderon.env;", "is not of type `null or string'"),
    ('environmentFile = "clauderon.env";', "must be an absolute path outside the Nix store"),
    ('environment = { ANTHROPIC_API_KEY = "sk-ant-real"; };',
     "would write ANTHROPIC_API_KEY into the world-readable Nix store"),
    ("port = 70000;", "`services.clauderon.port' is not of type"),
    ('datadir = "/srv";', "The option `services.clauderon.datadir' does not exist"),
])
def test_module_refuses_bad_settings(settings: str, error: str) -> None:
    out = nix_eval(settings=f"{{ enable = true; {settings} }}")
    assert out.returncode != 0
    assert error in out.stderr, out.stderr


# --- the double bites: each kind of mistake fails the evaluation ------------------------


def tree(tmp_path: Path, changes: dict[str, Callable[[str], str]]) -> Path:
    """A tree of symlinks to the checkout where each file named in ``changes`` is a real file
    holding ``change(its text)`` ("" for a new file). flake.nix is always a real copy: Nix
    resolves its relative paths from where the file really is."""
    top = tmp_path / "tree"
    changes = {"flake.nix": lambda text: text, **changes}
    for rel, change in changes.items():
        here, there = top, ROOT
        for part in Path(rel).parts:
            if here.is_symlink():  # a folder linked by an earlier change: make it real
                here.unlink()
            if not here.exists():
                here.mkdir()
                for entry in os.listdir(there) if there.is_dir() else []:
                    (here / entry).symlink_to(there / entry)
            here, there = here / part, there / part
        text = there.read_text() if there.exists() else ""
        if here.is_symlink():
            here.unlink()
        changed = change(text)
        assert changed != text or rel == "flake.nix", f"the change does not apply to {rel}"
        here.write_text(changed)
    return top


def replace(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new)


def drop_an_integrity(text: str) -> str:
    lock = json.loads(text)
    del lock["packages"]["node_modules/vite"]["integrity"]
    return json.dumps(lock)


def declare_an_unlocked_package(text: str) -> str:
    package = json.loads(text)
    package["devDependencies"]["left-pad"] = "1.3.0"
    return json.dumps(package)


@pytest.mark.parametrize(("rel", "change", "error"), [
    ("flake.nix", replace("dependencies = pythonDeps", "dependancies = pythonDeps"),
     "buildPythonApplication: unknown argument(s) dependancies"),
    ("flake.nix", replace("trio hypercorn quart-trio", "trio hypercorn quart_trio"),
     "undefined variable 'quart_trio'"),
    ("flake.nix", replace("[ nodejs pkgs.importNpmLock.npmConfigHook ]", "[ nodejs ]"),
     "needs importNpmLock.npmConfigHook"),
    ("flake.nix", replace("[ nodejs pkgs.importNpmLock.npmConfigHook ]",
                          "[ pkgs.importNpmLock.npmConfigHook ]"), "put a nodejs"),
    ("flake.nix", replace("nodejs = pkgs.nodejs_22", "nodejs = pkgs.nodejs_20"),
     "nodejs_20 reached end of life"),
    ("flake.nix", replace("packageLock = npmLock; ", ""), "has no resolved URL"),
    ("flake.nix", replace("importNpmLock { npmRoot", "importNpmLock { root"),
     "importNpmLock: unknown argument(s) root"),
    ("flake.nix", replace("./supervisord.conf", "./supervisor.conf"), "does not exist"),
    ("flake.nix", replace("Interval = seconds 30;", "Interval = 30;"), "nanoseconds"),
    ("flake.nix", replace("Retries = 3;", "Retries = 3; Intervall = seconds 30;"),
     "config.Healthcheck: unknown argument(s) Intervall"),
    ("flake.nix", replace('ExposedPorts = { "3030/tcp"', 'ExposedPort = { "3030/tcp"'),
     "streamLayeredImage config: unknown argument(s) ExposedPort"),
    ("flake.nix", replace('name = "clauderon-appliance";', 'name = "Clauderon-Appliance";'),
     "image names are lower case"),
    ("flake.nix", replace('type = "app";', 'type = "application";'), '.type must be "app"'),
    ("nix/module.nix", replace("systemd.services.clauderon", "systemd.service.clauderon"),
     "The option `systemd.service' does not exist"),
    ("nix/module.nix", replace("TimeoutStopSec = 75;", "TimeoutStopSecs = 75;"),
     "serviceConfig.TimeoutStopSecs' does not exist"),
    ("nix/module.nix", replace('description = "The service\'s primary group', 'descripton = "'),
     "called with unexpected argument 'descripton'"),
    ("api/web/package-lock.json", drop_an_integrity,
     "node_modules/vite has no integrity in package-lock.json"),
    ("api/web/package.json", declare_an_unlocked_package,
     "declares left-pad, which package-lock.json does not lock"),
])
def test_the_double_catches(tmp_path: Path, rel: str, change: Callable[[str], str],
                            error: str) -> None:
    out = nix_eval(tree(tmp_path, {rel: change}))
    assert out.returncode != 0, f"the evaluation accepted a broken {rel}"
    assert error in out.stderr, out.stderr
