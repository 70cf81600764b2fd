"""The import rules of the design: the core imports no edge; edges never import each other.

Every ``.py`` file under ``appliance/``, ``api/``, ``proxy/`` and ``cli/`` is parsed (not
imported) and each ``import``/``from ... import`` is checked, including ones inside
functions and ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "api", "proxy", "cli")
EDGES = ("api", "proxy", "cli")
FORBIDDEN: dict[str, set[str]] = {
    "appliance": {"api", "proxy", "cli", "quart", "quart_trio", "hypercorn"},
    "api": {"proxy", "cli"},
    "proxy": {"api", "cli"},
    "cli": {"api", "proxy"},
}


def imported_tops(path: Path, package: str) -> set[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside its own package
                found.add((node.lineno, package))
            elif node.module:
                found.add((node.lineno, node.module.split(".")[0]))
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_package_has_sources() -> None:
    for package in PACKAGES:
        assert sources(package), package


@pytest.mark.parametrize("package", PACKAGES)
def test_import_rules(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in sources(package)
        for line, top in sorted(imported_tops(path, package))
        if top in FORBIDDEN[package]
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from api.app import create_app\n    import quart.json\n")
    tops = {top for _line, top in imported_tops(sample, "appliance")}
    assert {"api", "quart"} <= tops
    assert tops & FORBIDDEN["appliance"] == {"api", "quart"}


#: Concrete backends (every module of ``appliance/backends`` but the protocol) and their
#: SDKs: only the core's backend factory may name them.
CONCRETE = (*(f"appliance.backends.{p.stem}" for p in sorted((ROOT / "appliance" / "backends")
                                                             .glob("*.py"))
              if p.stem not in ("__init__", "base")), "docker", "kubernetes")


def imported_modules(path: Path) -> set[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add((node.lineno, node.module))
            found |= {(node.lineno, f"{node.module}.{alias.name}") for alias in node.names}
    return found


@pytest.mark.parametrize("package", ["api", "cli", "proxy"])
def test_the_edges_never_import_a_concrete_backend(package: str) -> None:
    """The API and the CLI see backends through the protocol (``appliance.backends.base``)
    and get them from ``appliance.backends.open_backends``; none names Docker or
    Kubernetes itself."""
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sources(package)
        for line, name in sorted(imported_modules(path))
        if any(name == c or name.startswith(f"{c}.") for c in CONCRETE)
    ]
    assert not bad, "\n".join(bad)


def test_the_backend_checker_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from appliance.backends.docker import DockerBackend\nimport docker\n"
                      "from appliance.backends import docker_freeze\n")
    names = {name for _line, name in imported_modules(sample)}
    assert "appliance.backends.docker.DockerBackend" in names and "docker" in names
    assert "appliance.backends.docker_freeze" in names
    assert {"appliance.backends.docker_freeze", "appliance.backends.kubernetes_exec"} \
        <= set(CONCRETE) and "appliance.backends.base" not in CONCRETE


#: Run by a fresh interpreter: import the libraries the product uses (never a module of the
#: product), then fork a child for each product module, which imports it first of the
#: product's modules; prints ``{module: the end of its traceback}`` for each that failed.
#: The libraries are loaded once, not once a module: the check is about the product's own
#: import order, and a child sees only what a service sees before its first import of it.
FORK_IMPORTS = r"""
import importlib, json, os, signal, sys, traceback
libraries, modules = json.loads(sys.stdin.read())
for library in libraries:
    try:
        importlib.import_module(library)
    except Exception:
        pass  # a child that needs it fails and says so
assert not any(m.split(".")[0] in {"appliance", "api", "proxy", "cli"} for m in sys.modules)
failed, running = {}, {}
def reap():
    pid, status = os.wait()
    module, out = running.pop(pid)
    said = os.read(out, 4096).decode(errors="replace")
    os.close(out)
    if status != 0:
        failed[module] = said[-300:] or f"status {status}"
for module in modules:
    while len(running) >= 4:
        reap()
    out, into = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out)
        signal.alarm(120)
        try:
            importlib.import_module(module)
        except BaseException:
            os.write(into, traceback.format_exc()[-3000:].encode())
            os._exit(1)
        os._exit(0)
    os.close(into)
    running[pid] = (module, out)
while running:
    reap()
print(json.dumps(failed))
"""


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """No import cycle hides behind a lucky order: each module of the core and the edges is
    the first of the product's modules a fresh interpreter imports (the way a service, a
    tool or a test starts)."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts)
               for package in PACKAGES for p in sources(package)]
    modules = [m.removesuffix(".__init__") for m in modules if not m.endswith("__main__")]
    libraries = sorted({top for package in PACKAGES for path in sources(package)
                        for _, top in imported_tops(path, package)
                        if top not in PACKAGES and top != "__future__"})
    proc = subprocess.run([sys.executable, "-c", FORK_IMPORTS], cwd=ROOT, text=True,
                          input=json.dumps([libraries, modules]), capture_output=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout)
    assert len(modules) > 150 and "trio" in libraries
    assert failures == {}


def test_a_module_that_imports_badly_is_found() -> None:
    """The check above can fail: a module whose import raises is named with its error."""
    proc = subprocess.run([sys.executable, "-c", FORK_IMPORTS], cwd=ROOT, text=True,
                          input=json.dumps([["json"], ["appliance.no_such_module", "json"]]),
                          capture_output=True, timeout=120, check=True)
    failures = json.loads(proc.stdout)
    assert list(failures) == ["appliance.no_such_module"]
    assert "ModuleNotFoundError" in failures["appliance.no_such_module"]


#: The services that load httpx (the GitHub client, the title call, the HTTP log sink).
HTTP_CLIENTS = ("api.__main__", "appliance.reconcile.__main__", "appliance.shipper.__main__")


def test_services_load_no_command_line_client() -> None:
    """A service started as supervisord starts it (its entry module first, in a fresh
    interpreter) loads no terminal-rendering library: httpx's command-line client would
    bring rich and pygments into every service that talks HTTP (see ``appliance``)."""
    entries = re.findall(r'^clauderon-\w+ = "([\w.]+):\w+"$',
                         (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert {*HTTP_CLIENTS, "proxy.__main__"} <= set(entries)
    for entry in entries:
        proc = subprocess.run(
            [sys.executable, "-c", f"import sys, {entry}; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'pygments'}), "
             "'httpx' in sys.modules)"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
        loaded, _, uses_httpx = proc.stdout.strip().rpartition(" ")
        assert loaded == "[]", f"{entry} loads {loaded}"
        if entry in HTTP_CLIENTS:
            assert uses_httpx == "True", entry  # the check above means something for it


def shared_basenames(paths: list[Path]) -> list[str]:
    """Each basename two or more product modules share, with the modules (package markers
    aside: every package has its ``__init__`` and each service its ``__main__``)."""
    by_name: dict[str, list[str]] = {}
    for path in paths:
        if path.stem not in ("__init__", "__main__"):
            by_name.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    return [f"{name}: {', '.join(sorted(where))}"
            for name, where in sorted(by_name.items()) if len(where) > 1]


def test_no_two_modules_share_a_name() -> None:
    """A module is named by its role, so a name read in a traceback, a patch target or a
    review points at one file (``api/session_routes.py``, not a third ``sessions.py``)."""
    shared = shared_basenames([p for package in PACKAGES for p in sources(package)
                               if "node_modules" not in p.parts])
    assert not shared, "modules sharing a name, rename one by its role:\n" + "\n".join(shared)


@pytest.mark.parametrize(("paths", "expected"), [
    (["api/a.py", "cli/b.py"], []),
    (["api/__init__.py", "cli/__init__.py", "api/__main__.py", "proxy/__main__.py"], []),
    (["api/a.py", "cli/tui/a.py", "proxy/b.py"], ["a.py: api/a.py, cli/tui/a.py"]),
])
def test_the_name_checker_sees_a_pair(paths: list[str], expected: list[str]) -> None:
    assert shared_basenames([ROOT / p for p in paths]) == expected
