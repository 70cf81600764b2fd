"""The web UI's types are the API's: the committed OpenAPI document is what the app serves,
and the committed TypeScript is what openapi-typescript makes of it, offline.

``api/web/openapi.json`` is dumped by ``python -m api.openapi_dump`` and
``api/web/src/generated/openapi.ts`` by ``npm run types`` (the exact command is read from
package.json, so this test and the script cannot disagree). Both are regenerated here and
compared with the committed files; a control shows that a change in the wire model does
change the types, so the comparison can fail.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from api import openapi_dump

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web"
DOCUMENT = WEB / "openapi.json"
TYPES = WEB / "src" / "generated" / "openapi.ts"
FIX = ("run: .venv/bin/python -m api.openapi_dump api/web/openapi.json && "
       "npm run --prefix api/web types")


def generate(document: Path, out: Path) -> str:
    """Run the package's ``types`` script on ``document``, writing ``out``."""
    assert (WEB / "node_modules").is_dir(), "run: npm ci --prefix api/web"
    script = json.loads((WEB / "package.json").read_text())["scripts"]["types"]
    argv = shlex.split(script)
    assert argv[0] == "openapi-typescript" and "openapi.json" in argv and "--output" in argv
    argv[0] = str(WEB / "node_modules" / ".bin" / "openapi-typescript")
    argv[argv.index("openapi.json")] = str(document)
    argv[argv.index("--output") + 1] = str(out)
    done = subprocess.run(argv, cwd=WEB, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_text()


@pytest.fixture(scope="module")
def dumped() -> str:
    return openapi_dump.text()


def test_the_committed_document_is_the_one_the_api_serves(dumped: str) -> None:
    assert DOCUMENT.read_text() == dumped, f"api/web/openapi.json is out of date; {FIX}"


def test_the_committed_types_are_generated_from_it(dumped: str, tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(dumped)
    assert generate(document, tmp_path / "openapi.ts") == TYPES.read_text(), \
        f"src/generated/openapi.ts is out of date; {FIX}"


def test_a_change_in_the_wire_model_changes_the_types(dumped: str, tmp_path: Path) -> None:
    doc = json.loads(dumped)
    session = doc["components"]["schemas"]["Session"]
    session["properties"]["new_field"] = {"type": "string"}
    session["required"].append("new_field")
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(doc))
    changed = generate(document, tmp_path / "openapi.ts")
    assert changed != TYPES.read_text() and "new_field: string;" in changed


def test_the_app_reads_the_generated_shapes_not_its_own() -> None:
    api = (WEB / "src" / "api.ts").read_text()
    assert 'from "./generated/openapi"' in api
    assert 'export type Session = Schemas["Session"];' in api
    assert 'export type Message = Schemas["Message"];' in api
    src = WEB / "src"
    for path in src.rglob("*.ts*"):
        if "generated" in path.parts:
            continue
        text = path.read_text()
        assert "interface Session " not in text, path
        assert "PLAN_TOOLS" not in text and "ExitPlanMode" not in text, path
    assert not (src / "transcript.ts").exists()
