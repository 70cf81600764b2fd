"""flake.nix parses with the real Nix and exposes what `nix run` / `nix build` need.

Evaluating it needs nixpkgs, which cannot be fetched offline; parsing and the shape of its
outputs can be checked here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_flake_parses_and_runs_the_appliance() -> None:
    out = subprocess.run(["nix-instantiate", "--parse", str(ROOT / "flake.nix")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    parsed = out.stdout
    for output in ("packages", "apps", "devShells", "checks"):
        assert output in parsed
    text = (ROOT / "flake.nix").read_text()
    assert "/bin/clauderon daemon" in text
    # Every runtime dependency of the distribution is in the flake's Python set.
    for dep in ("trio", "hypercorn", "quart-trio", "docker", "kubernetes", "trustme",
                "cryptography", "supervisor", "httpx", "textual", "webauthn"):
        assert f" {dep}" in text or f"\n        {dep}" in text
