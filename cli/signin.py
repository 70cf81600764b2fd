"""``clauderon web`` and ``clauderon auth``: sign-in links, devices, passkeys and tokens.

All of it goes through the Unix socket, the only place a sign-in link or a token can be
made: whoever can run these commands already owns the appliance.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import webbrowser
from datetime import datetime
from typing import Any

from appliance.config import Settings, load_settings
from appliance.errors import ServiceUnavailable
from cli import calls
from cli.client import ApiClient, local_client
from cli.render import table
from cli.table import Command, OneOf, arg, emit


def _local_host(settings: Settings) -> str:
    """The loopback name to print: ``localhost`` (passkeys need a name, not 127.0.0.1),
    or the bind address when it is a specific non-loopback one."""
    host = settings.http_host
    if host in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::") or host.startswith("127."):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def sign_in_urls(settings: Settings, path: str) -> list[str]:
    """Where the link can be opened: this machine first, then each public name (over HTTPS:
    served here with ``tls_cert``, or by ``tailscale serve`` on the default port)."""
    tls = bool(settings.tls_cert)
    scheme = "https" if tls else "http"
    return [f"{scheme}://{_local_host(settings)}:{settings.http_port}{path}",
            *(f"https://{name}:{settings.http_port}{path}" if tls else f"https://{name}{path}"
              for name in settings.public_names)]


def has_desktop() -> bool:
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY")
                                            or os.environ.get("WAYLAND_DISPLAY"))


def cmd_web(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.http_port:
        print("clauderon: the web UI is off ([server] port = 0)", file=sys.stderr)
        return 78
    link = local_client().run(calls.sign_in_link())
    urls = sign_in_urls(settings, link["path"])
    if args.json:
        print(json.dumps({"urls": urls, "expires_at": link["expires_at"]}, indent=2))
        return 0
    _announce(urls, open_browser=not args.no_open)
    return 0


def _announce(urls: list[str], *, open_browser: bool) -> None:
    print("Sign in to Clauderon (this link works once, for 5 minutes):\n")
    for url in urls:
        print(f"  {url}")
    print("\nIt signs that browser in and offers to add a passkey for next time.", flush=True)
    if open_browser and has_desktop():
        webbrowser.open(urls[0])


def greet_when_up(settings: Settings, *, patience: float = 120.0) -> int:
    """What ``clauderon daemon --sign-in`` runs beside the appliance (as Jupyter prints its
    token URL): wait for the API to answer on its socket, then print a one-time sign-in link
    (and open it on a desktop). Bounded: after ``patience`` seconds it says how to get one."""
    deadline = time.monotonic() + patience
    client = ApiClient(settings.socket_path, timeout=5)
    try:
        while True:
            try:
                link = client.run(calls.sign_in_link())
                break
            except ServiceUnavailable:
                if time.monotonic() > deadline:
                    print("clauderon: the API did not answer; sign a browser in later with "
                          "`clauderon web`", file=sys.stderr, flush=True)
                    return 1
                time.sleep(0.25)
    finally:
        client.close()
    _announce(sign_in_urls(settings, link["path"]), open_browser=True)
    return 0


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")


def cmd_auth_list(args: argparse.Namespace) -> int:
    records = local_client().run(calls.devices())
    kinds = [("browser", s, f"signed in with {s['method']}") for s in records["sessions"]]
    kinds += [("passkey", p, p["rp_id"]) for p in records["passkeys"]]
    kinds += [("token", t, t["scope"]) for t in records["tokens"]]
    rows = [(r["id"], kind, r["name"], detail, _when(r["created_at"]), _when(r["last_used_at"]))
            for kind, r, detail in kinds]
    return emit(args, records, table(("ID", "KIND", "NAME", "DETAIL", "CREATED", "LAST USED"),
                                     rows) if rows else
                "Nobody is signed in and there are no passkeys or tokens. "
                "Sign a browser in with: clauderon web")


def cmd_auth_revoke(args: argparse.Namespace) -> int:
    out = local_client().run(calls.revoke(args.id))
    print(f"revoked {out['kind']} {out['revoked']}")
    return 0


def cmd_auth_token(args: argparse.Namespace) -> int:
    scope = "read-only" if args.read_only else "read-write"
    body: dict[str, Any] = {"scope": scope}
    if args.name:
        body["name"] = args.name
    token = local_client().run(calls.make_token(body))
    print(token["token"])
    print(f"{token['id']}: a {scope} token; it is shown only now. Send it as "
          "'Authorization: Bearer <token>'; revoke it with "
          f"`clauderon auth revoke {token['id']}`.", file=sys.stderr)
    return 0


TABLE = (
    Command(name="web", help="sign a browser in: print (and on a desktop open) a one-time "
            "link, valid 5 minutes, that offers to add a passkey", handler=cmd_web,
            args=(arg("--no-open", action="store_true", help="print the link only"),)),
    Command(name="auth", help="signed-in browsers, passkeys and API tokens: list, revoke, "
            "token create", handler=None, json=False, actions_dest="auth_command", actions=(
        Command(name="list", help="list signed-in browsers, passkeys and tokens",
                description="List signed-in browsers, passkeys and API tokens.",
                handler=cmd_auth_list),
        Command(name="revoke", help="sign a browser out, or remove a passkey or token",
                description="Revoke a browser session, passkey or API token by id (removing "
                "a passkey signs out the browsers it signed in).", handler=cmd_auth_revoke,
                json=False,
                args=(arg("id", help="the id `clauderon auth list` shows (s-, p- or t-...)"),)),
        Command(name="token", help="make a bearer token for scripts",
                description="Make a bearer token for non-browser clients over TCP.",
                handler=None, json=False, actions_dest="token_command", actions=(
            Command(name="create", help="make a token (printed once, stored hashed)",
                    description="Make a bearer token (printed once, stored hashed).",
                    handler=cmd_auth_token, json=False, args=(
                OneOf((arg("--read-only", action="store_true",
                           help="GET routes and the events WebSocket only"),
                       arg("--read-write", action="store_true",
                           help="everything a browser can do")), required=True),
                arg("--name", help="a name to tell it apart in `clauderon auth list`"))),)))),
)
