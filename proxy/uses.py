"""What a session may do with the person's credentials beyond GitHub. Pure: a request in, a
reason out.

The proxy puts a real credential into the agent's requests, so whatever the credential can
do at its service, the agent can ask for. Two kinds of request would break the promise:

* **Minting a credential.** A request whose answer *is* a credential hands the agent one of
  its own, which outlives the session and leaves with it. Anthropic's ``create_api_key``
  turns a login into an API key and Sentry's ``api-tokens`` make tokens; a
  registry's token endpoint (``auth.docker.io``) answers a token for the scopes asked, and
  one that may push or delete is refused, and so is a refresh token with it
  (``offline_token``: it never expires and gets any scope); a pull token, which lasts
  minutes and reads only, is what a pull needs.
* **Publishing as the person.** With a registry's credential, a write is a package or an
  image published under the person's name: a supply-chain attack from a prompt injection.
  ``npm_token`` and ``docker_token`` are read-only for sessions (``GET``, ``HEAD``, and the
  ``POST`` npm's audit makes), unless ``proxy.toml`` lists them in ``allow_writes``.

Every rule here and in ``gitguard.py`` tells a read from a write by the request's method,
so a header some servers take as the method instead (``X-HTTP-Method-Override`` and its
kin: a ``GET`` that is a ``PUT``) is refused with a credential (:func:`method_override`).
So is ``TRACE``, whose answer is the request as the server got it, credential included
(any other echo of it is masked on its way back: ``scrub.py``).

A write to a login's billing (Anthropic's overage, prepaid credits, payment method) spends
the person's money, and is theirs too; so is a write to a model provider's organisation
administration (an admin key's invites, members, keys, service accounts and projects).
GitHub's own rules are ``gitguard.py``'s, which judges GraphQL in a POST's body: a document
in a URL's query is refused here.
:func:`use_refusal` returns why a request is refused, or None.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Collection, Iterable
from urllib.parse import parse_qs, unquote

from appliance.methods import READS
from proxy.gitguard import GITHUB_API, GRAPHQL, checkable_path
from proxy.loosepath import decoded_path, folded, unknown
from proxy.rules import server_path

#: Credentials a session may only read with, and the POSTs that read (by path prefix).
READ_ONLY: dict[str, tuple[str, ...]] = {
    "npm_token": ("/-/npm/v1/security/",),  # npm audit sends what it asks about
    "docker_token": (),
}
#: Paths whose answer is a new credential, by the credentials they mint from.
MINTING: dict[str, tuple[str, ...]] = {
    "anthropic_oauth_token": ("/api/oauth/claude_cli/create_api_key",),
    "anthropic_api_key": ("/api/oauth/claude_cli/create_api_key",),
    "sentry_auth_token": ("/api/0/api-tokens",),
    "npm_token": ("/-/npm/v1/tokens",),  # even where allow_writes lets a session publish
    # A GET: a Copilot token (its model access, on the person's seat) from a GitHub login.
    "github_token": ("/copilot_internal/v2/token",),
    "grafana_api_key": ("/api/auth/keys",),
    # OpenAI's Realtime client secrets (and the sessions that answer one): a key of their
    # own for a browser or phone to speak to the API with, on the person's account.
    "openai_api_key": ("/v1/realtime/client_secrets", "/v1/realtime/sessions",
                       "/v1/realtime/transcription_sessions"),
}
#: Where a refused path's name ends: anything but a character that goes on the name, since
#: servers cut a path or read past it at a fragment (``#``), a NUL, a format suffix
#: (``.json``), a space or a ``/`` alike; a longer name is another endpoint.
END = r"(?![\w-])"
#: :data:`MINTING` as one pattern a credential (compiled once: every request reads it).
_MINTS = {credential: re.compile("(?:" + "|".join(map(re.escape, paths)) + ")" + END)
          for credential, paths in MINTING.items() if paths}
#: Writes that spend the person's money (Anthropic's billing for a login's organisation).
BILLING = re.compile(r"^/api/oauth/organizations/[^/]+/(overage_spend_limit|overage_credit_grant"
                     r"|setup_overage_billing|prepaid|payment_method|contracts)" + END)
ANTHROPIC = frozenset({"anthropic_oauth_token", "anthropic_api_key"})
#: A model provider's organisation administration, which an admin key reaches: an invite is
#: access for someone else, a service account (OpenAI) answers a new key.
ADMIN: dict[str, re.Pattern[str]] = {
    **dict.fromkeys(ANTHROPIC, re.compile(r"^/v1/organizations" + END)),
    "openai_api_key": re.compile(r"^/v1/organization" + END),
    # Sentry's members and invites, legacy API keys, organisation auth tokens,
    # integrations and their tokens.
    "sentry_auth_token": re.compile(
        r"^/api/0/(organizations/[^/]+/(members|invite-requests|api-keys|org-auth-tokens"
        r"|integrations|sentry-app-installations)|sentry-apps|sentry-app-installations)"
        + END),
    "pagerduty_token": re.compile(r"^/users" + END),
    # Grafana's users, invites and service accounts (whose tokens are new credentials).
    "grafana_api_key": re.compile(r"^/api/(admin|org/users|org/invites|serviceaccounts"
                                  r"|orgs/\d+/users)" + END),
}
REGISTRY_AUTH = "auth.docker.io"


#: Methods whose answer is the request itself (credential included): never sent with one.
ECHOING = frozenset({"TRACE", "TRACK"})
#: Headers some servers read as the request's method in place of its own.
METHOD_OVERRIDES = frozenset({b"x-http-method-override", b"x-http-method",
                              b"x-method-override"})


def _named(headers: Iterable[tuple[bytes, bytes]], names: frozenset[bytes]) -> str | None:
    """The first header of ``names``, as sent; an ``_`` read as a ``-``, as a CGI
    environment reads it (both are ``HTTP_X_HTTP_METHOD_OVERRIDE`` there)."""
    return next((name.decode("latin-1") for name, _ in headers
                 if name.lower().replace(b"_", b"-") in names), None)


def method_override(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why a request naming another method than its own is refused, or None."""
    if (name := _named(headers, METHOD_OVERRIDES)) is not None:
        return (f"the header {name} asks for another method than the request's, which is "
                "what is checked; send the request with that method")
    return None


#: A path up to this long has its readings kept (:func:`readings`), the last
#: :data:`KEPT_READINGS` of them: a session's requests go to a few paths again and again.
KEPT_PATH = 1024
KEPT_READINGS = 512


def readings(target: str) -> tuple[str, ...]:
    """A target's path as servers may read it, in any case: escapes decoded once and dot
    segments resolved; as :func:`proxy.rules.server_path` reads it (escapes decoded
    again, a backslash as a slash, ``;`` parameters dropped), which some servers do; and
    with IIS's ``%uXXXX`` and overlong UTF-8 decoded too (:func:`decoded_path`); and that
    with look-alikes folded (:func:`folded`: a dotless i is ``i``, a fullwidth k ``k``).
    A function of the path alone, so the readings of a short one are kept, whoever sent
    it (a long one is read anew: kept, it would hold many times its length)."""
    path = target.split("?", 1)[0]
    return _kept(path) if len(path) <= KEPT_PATH else _read(path)


def _read(path: str) -> tuple[str, ...]:
    once = "/" + posixpath.normpath(unquote(path)).lstrip("/").lower()
    decoded = decoded_path(path)
    return (once, server_path(path).lower(), decoded.lower(), folded(decoded))


_kept = functools.lru_cache(maxsize=KEPT_READINGS)(_read)


#: Headers some servers (IIS's URL Rewrite, frameworks behind it) route by in place of the
#: request's own path, which is what every rule reads.
PATH_OVERRIDES = frozenset({b"x-original-url", b"x-rewrite-url"})


def path_override(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why a request naming another path than its own is refused, or None."""
    if (name := _named(headers, PATH_OVERRIDES)) is not None:
        return (f"the header {name} asks for another path than the request's, which is "
                "what is checked; send the request to that path")
    return None


#: The longest path read for the rules above. Servers refuse a longer request line
#: (nginx and Apache at 8 KiB, with a 414); reading one costs the proxy, shared by every
#: session, tens of milliseconds (``%uFDFA`` is eighteen letters once folded).
PATH_LIMIT = 8192


def _person_only(credential: str, method: str, path: str, reads: tuple[str, ...]
                 ) -> str | None:
    """Why ``path`` (as ``reads``) is an endpoint only the person may use ``credential``
    at: one that mints a credential, spends their money or administers their organisation
    (or may be one, read by a newer Unicode); None when it is none."""
    if (mints := _MINTS.get(credential)) is not None and any(map(mints.match, reads)):
        return (f"{path} would make a new credential from the person's {credential}: that "
                "is theirs to do")
    if credential in ANTHROPIC and method not in READS \
            and any(BILLING.match(read) for read in reads):
        return f"{method} {path} would change the person's billing: that is theirs to do"
    admin = ADMIN.get(credential)
    if admin is not None and method not in READS and any(admin.match(r) for r in reads):
        return (f"{method} {path} would change who and what may use the person's "
                "organisation (members, invites, keys, service accounts, projects): that is "
                "theirs to do")
    if (credential in MINTING or admin is not None) \
            and (char := unknown(reads[2])) is not None:
        return (f"{path} holds U+{ord(char):04X}, a character newer than the proxy's "
                "Unicode, which a server that knows it may read as a letter or a digit of an "
                f"endpoint the person's {credential} must not reach: send the path without it")
    return None


def use_refusal(credential: str, host: str, method: str, target: str, *,
                allow_writes: Collection[str] = ()) -> str | None:
    """Why a session may not send this request with ``credential``, or None."""
    if method.upper() in ECHOING:
        return (f"{method} answers with the request as the server got it, the person's "
                f"{credential} in it")
    path = target.split("?", 1)[0]
    if len(path) > PATH_LIMIT:
        return (f"the path is {len(path)} characters long, more than the {PATH_LIMIT} a "
                "server reads (it answers 414): send a shorter one")
    reads = readings(target)
    if (why := _person_only(credential, method, path, reads)) is not None:
        return why
    if host == GITHUB_API and GRAPHQL in reads and method != "POST" and "?" in target:
        return "GraphQL is judged in a POST's body; one in a URL cannot be checked"
    only = READ_ONLY.get(credential)
    if only is None:
        return None
    if host == REGISTRY_AUTH:
        return _registry_refusal(target)
    if credential in allow_writes or method in READS:
        return None
    if method == "POST" and checkable_path(path) is not None \
            and any(path.startswith(p) for p in only):
        return None
    return (f"{method} {path} with the person's {credential} would publish or change "
            "something under their name: that is theirs to do (or list the credential in "
            "proxy.toml allow_writes)")


#: How Go reads a false boolean (``strconv.ParseBool``); any other ``offline_token`` asks.
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def _registry_refusal(target: str) -> str | None:
    """Why a request for a registry token is refused, or None: one that may do more than
    pull, or that comes with a refresh token (``offline_token``), which never expires and
    gets tokens of any scope."""
    query = parse_qs(target.partition("?")[2], keep_blank_values=True)
    if any(value not in _FALSE for value in query.get("offline_token", [])):
        return ("offline_token asks for a refresh token, a lasting credential that gets "
                "tokens of any scope: the person's to ask for; a session may pull without it")
    # Each parameter may hold several scopes, separated by spaces (OAuth's way).
    scopes = [one for param in query.get("scope", []) for one in param.split()]
    actions = {a for scope in scopes for a in scope.rpartition(":")[2].split(",")}
    if actions - {"pull"}:
        return (f"a registry token that may {', '.join(sorted(actions - {'pull'}))} is "
                "the person's to ask for; a session may pull")
    return None
