"""The one error tree.

Every error Clauderon raises on purpose is a :class:`ClauderonError`. Each class carries the
HTTP status the API answers with and the exit code the CLI ends with, so both edges map
errors in exactly one place. Messages are written for an operator: what went wrong and what
to do about it. Third-party exceptions are translated at the adapter (``raise ... from exc``).

The tree keeps "your request is wrong" (4xx) apart from "something we depend on failed" (5xx).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import ClassVar, TypeVar


class ClauderonError(Exception):
    """Root of every error Clauderon raises on purpose."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The request field the error concerns, when there is one (UIs show it beside it).
        self.field = field

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "code": self.code}
        if self.field is not None:
            body["field"] = self.field
        return body


# --- the client's fault -------------------------------------------------------------


class InvalidInput(ClauderonError):
    """The request is malformed or names something that cannot work (400)."""

    http_status = 400
    exit_code = 2
    code = "invalid_input"


class Unauthorized(ClauderonError):
    """Missing or wrong credentials (401)."""

    http_status = 401
    exit_code = 77
    code = "unauthorized"


class Forbidden(ClauderonError):
    """Known credentials that may not do this, or a request from where it may not come (403)."""

    http_status = 403
    exit_code = 77
    code = "forbidden"


class NotFound(ClauderonError):
    """The named session (or other object) does not exist (404)."""

    http_status = 404
    exit_code = 3
    code = "not_found"


class Conflict(ClauderonError):
    """The request clashes with the current state: a duplicate name, a bad transition (409)."""

    http_status = 409
    exit_code = 4
    code = "conflict"


class PayloadTooLarge(ClauderonError):
    http_status = 413
    exit_code = 2
    code = "payload_too_large"


class UnsupportedMediaType(ClauderonError):
    http_status = 415
    exit_code = 2
    code = "unsupported_media_type"


class LimitReached(ClauderonError):
    """A configured limit is reached (sessions, concurrent creates); wait or free one (429)."""

    http_status = 429
    exit_code = 75
    code = "limit_reached"


class MisdirectedHost(ClauderonError):
    """A ``Host`` this appliance does not answer to (DNS rebinding looks like this) (421)."""

    http_status = 421
    exit_code = 2
    code = "unknown_host"


class TooManyRequests(ClauderonError):
    """Too many attempts in a short time (sign-in); try again later (429)."""

    http_status = 429
    exit_code = 75
    code = "too_many_requests"


# --- upstream's fault ---------------------------------------------------------------


class BackendUnavailable(ClauderonError):
    """The container engine (or cluster) cannot be reached at all (503)."""

    http_status = 503
    exit_code = 69
    code = "backend_unavailable"


class BackendError(ClauderonError):
    """The container engine answered, but refused or failed the operation (502)."""

    http_status = 502
    exit_code = 70
    code = "backend_error"

    #: False when trying again cannot help (a missing image, an invalid spec).
    retryable: bool = True

    def __init__(self, message: str, *, field: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, field=field)
        self.retryable = retryable


class GitError(ClauderonError):
    """A git command failed on a repository we were asked to use."""

    http_status = 400
    exit_code = 65
    code = "git_error"


class RemoteError(ClauderonError):
    """A remote the appliance works with for a person (GitHub, through the proxy) failed or
    refused its credential (502)."""

    http_status = 502
    exit_code = 69
    code = "remote_error"


class ServiceUnavailable(ClauderonError):
    """The appliance itself (API socket, database) is not reachable (503)."""

    http_status = 503
    exit_code = 69
    code = "service_unavailable"


class ConfigError(ClauderonError):
    """A configuration file or value is wrong; the message names the file and the key."""

    http_status = 500
    exit_code = 78
    code = "config_error"


def refuse_unknown(keys: Iterable[str], known: Iterable[str], where: str,
                   error: type[ClauderonError] = ConfigError) -> None:
    """The one check of a table's keys: the first unknown one named, with the known ones."""
    known = sorted(known)
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")


E = TypeVar("E", bound=BaseException)


def first_leaf(group: BaseExceptionGroup[E]) -> E:
    """The first error inside ``group`` and the groups it holds."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf  # type: ignore[return-value]


def cannot_listen(exc: OSError, address: str, key: str) -> ConfigError:
    """What a service says when it cannot listen on ``address``: who holds it, what moves it.

    ``key`` is the setting that chooses the port (``[server] port``, ``CLAUDERON_HTTP_PORT``).
    """
    if exc.errno == errno.EADDRINUSE:
        why = "another program already listens there; stop it, or"
    else:
        why = f"{exc.strerror or exc}; free it, or"
    return ConfigError(f"cannot listen on {address}: {why} set {key} to another port")
