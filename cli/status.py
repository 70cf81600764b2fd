"""``clauderon status``: the appliance's health and the credentials doctor, and the
warning ``clauderon create`` gives when the agent's model credential is missing.

The API answers both (``/api/health``, ``/api/credentials``); this module only renders. The
credentials are the proxy's, as it loaded them: names, where each came from, masked values
(never a value: the proxy masks before it publishes).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

from appliance.config import load_settings
from cli import calls
from cli.client import ApiClient
from cli.render import table
from cli.table import emit

SOURCES = {"env": "environment", "1password": "1Password", "file": "file",
           "codex-auth.json": "Codex auth.json"}


def credentials_text(report: Mapping[str, Any]) -> str:
    """The credentials table, which agents can work, and the loader's warnings."""
    if not report.get("published"):
        head = ("credentials  the proxy has not loaded any yet (is it running? "
                "`clauderon logs proxy`)")
    else:
        head = (f"credentials  as the proxy loaded them at {report.get('loaded_at')} (after a "
                "change: restart the proxy or send it SIGHUP)")
    rows = [[c["name"], SOURCES.get(c["source"] or "", c["source"] or "-"),
             c["masked"] or "", " or ".join(c["env"])] for c in report["credentials"]]
    lines = [head, textwrap.indent(table(["NAME", "SOURCE", "VALUE", "SET WITH"], rows), "  "),
             "agents"]
    for agent in report["agents"]:
        state = (f"ready (model credential {agent['using']})" if agent["ready"]
                 else f"NOT READY: {agent['hint']}")
        lines.append(f"  {agent['agent']:<8} {state}")
    if report.get("warnings"):
        lines.append("warnings")
        lines += [f"  ! {w}" for w in report["warnings"]]
    return "\n".join(lines)


def health_text(health: Mapping[str, Any], socket: str) -> str:
    docker = health.get("docker", {})
    text = [f"api          ok ({socket})",
            "docker       " + ("ok " + docker.get("url", "") if docker.get("reachable")
                               else f"UNREACHABLE: {docker.get('error')}")]
    disk = health.get("disk")
    if disk:
        text.append(_disk_line(disk))
        if disk.get("largest"):
            text.append("             largest sessions: " + ", ".join(
                _disk_use(w) for w in disk["largest"]))
    if "sessions" in health:
        sessions = health["sessions"]
        extra = [f"{sessions['failed']} failed"]
        if sessions.get("model_failing"):
            extra.append(f"{sessions['model_failing']} failing to reach their model")
        if sessions.get("agent_exited"):
            extra.append(f"{sessions['agent_exited']} whose agent exited (restart-agent)")
        text.append(f"sessions     {sessions['total']} ({', '.join(extra)})")
    return "\n".join(text)


def cmd_status(args: argparse.Namespace) -> int:
    socket = load_settings().socket_path
    client = ApiClient(socket)
    health = client.run(calls.health())
    report = client.run(calls.credentials())
    emit(args, {**health, "credentials": report},
         health_text(health, str(socket)) + "\n\n" + credentials_text(report))
    return 0 if health.get("status") == "ok" else 1


def warn_missing_credential(client: ApiClient, agent: str) -> None:
    """Before a create: say so when ``agent`` has no model credential (it is created
    anyway; its model requests will fail until one is set, and its status will say so)."""
    report = client.run(calls.credentials())
    found = next((a for a in report["agents"] if a["agent"] == agent), None)
    if found is None or found["ready"]:
        return
    print(f"clauderon: warning: {found['hint']}; the session will be created, but its agent "
          "cannot reach its model until then", file=sys.stderr)


def _disk_line(disk: Mapping[str, Any]) -> str:
    """``disk  N MiB free (path)``, or FULL: of bytes or of files, and what to do."""
    free, reserve = disk["free_bytes"] // 2**20, disk["reserve_bytes"] // 2**20
    files = disk.get("free_files")
    room = f"{free} MiB free" + ("" if files is None else f", room for {files} files")
    if not disk["full"]:
        return f"disk         {room} ({disk['path']})"
    short = f"{disk['reserve_files']} files" if free >= reserve else f"{reserve} MiB"
    return (f"disk         FULL: {room} ({disk['path']}); below {short} the proxy forwards "
            "nothing (it could not record it): free space, the sessions' workspaces first")


def _disk_use(row: dict[str, Any]) -> str:
    """``alpha 300 MiB`` and, when some of it was written in its container outside the
    workspace (its home, the container's layer) or is its requests' audit lines, how much."""
    out = f"{row['name']} {row['bytes'] // 2**20} MiB"
    if row.get("files") is not None:  # ranked by files: the disk's files ran out
        out = f"{row['name']} {row['files']} files, {row['bytes'] // 2**20} MiB"
    inside = int(row.get("container_bytes") or 0) // 2**20
    lines = int(row.get("audit_bytes") or 0) // 2**20
    parts = [f"{inside} MiB in its container"] * bool(inside) + [
        f"{lines} MiB of its requests' audit lines"] * bool(lines)
    return out + f" ({', '.join(parts)})" if parts else out
