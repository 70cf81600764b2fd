"""The browser app's static checks are part of the suite: TypeScript and ESLint are clean.

Runs the scripts of api/web/package.json with its installed packages (appliance/setup.sh
installs them), and shows that the lint rules reach Preact's hooks.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web"

BAD_HOOK = """import { useState } from "preact/hooks";
export function Bad({ on }: { on: boolean }) {
  if (on) { const [x] = useState(0); return <p>{x}</p>; }
  return null;
}
"""


def npm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert (WEB / "node_modules").is_dir(), "run: npm ci --prefix api/web"
    return subprocess.run(["npm", *args], cwd=WEB, input=stdin, capture_output=True,
                          text=True, timeout=600)


def test_typecheck_and_lint_are_clean() -> None:
    out = npm("run", "check", "--silent")
    assert out.returncode == 0, out.stdout + out.stderr


def test_lint_catches_a_conditional_preact_hook() -> None:
    out = npm("exec", "--", "eslint", "--format", "json", "--stdin",
              "--stdin-filename", "src/components/Badge.tsx", stdin=BAD_HOOK)
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    rules = {m["ruleId"] for m in report[0]["messages"]}
    assert "react-hooks/rules-of-hooks" in rules, report
