"""The Docker backend's one engine client, shared by its worker threads.

Every call of the backend runs on a worker thread (``DockerBackend._call``), several at
once, through one ``DockerClient``: its connection pool hands each thread a connection of
its own. When the engine cannot be reached (it restarted, its socket went away) the client
is dropped, so the next call connects anew. A dropped client is closed, its pooled
connections with it, once no call uses it any more: closing it under a call in flight on
another thread (one that has its pool but not yet a connection) would fail that call as if
the engine were gone. Dropped without a close, its sockets stayed open until the garbage
collector next came by, a set more at each loss.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests.exceptions


def lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the engine could not be reached (not that it refused)."""
    return isinstance(exc, (requests.exceptions.ConnectionError, docker.errors.DockerException)
                      ) and not isinstance(exc, docker.errors.APIError)


class SharedClient:
    """One client for many threads, made on first use, made anew after it is lost."""

    def __init__(self, make: Callable[[], docker.DockerClient]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        #: Calls using each client not yet closed (the current one, and dropped ones).
        self._users: dict[docker.DockerClient, int] = {}

    @contextmanager
    def use(self) -> Iterator[docker.DockerClient]:
        """The client, for one call; dropped if the call finds the engine unreachable."""
        client = self._take()
        try:
            yield client
        except BaseException as exc:
            if lost(exc):
                with self._lock:
                    if self._client is client:
                        self._client = None  # the next call connects anew
            raise
        finally:
            self._leave(client)

    def close(self) -> None:
        """Let the client go: closed now, or once the last call using it ends."""
        with self._lock:
            client, self._client = self._client, None
            if client is None or self._users[client]:
                return
            del self._users[client]
        client.close()

    def _take(self) -> docker.DockerClient:
        with self._lock:
            if self._client is not None:
                self._users[self._client] += 1
                return self._client
        # Made without the lock: making one asks the engine its version, and a thread
        # waiting on an engine that does not answer must not hold every other call.
        made = self._make()
        with self._lock:
            if self._client is None:
                self._client, self._users[made] = made, 0
            client = self._client
            self._users[client] += 1
        if client is not made:  # another thread made one meanwhile
            made.close()
        return client

    def _leave(self, client: docker.DockerClient) -> None:
        with self._lock:
            self._users[client] -= 1
            last = not self._users[client] and client is not self._client
            if last:
                del self._users[client]
        if last:
            client.close()
