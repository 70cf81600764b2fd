"""What the API's routes are handed: settings, the store, the backend, the event hub."""

from __future__ import annotations

from dataclasses import dataclass

from api.events import EventHub
from appliance.backends.docker import DockerBackend
from appliance.config import Settings
from appliance.store import AsyncStore


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiContext:
    settings: Settings
    store: AsyncStore
    backend: DockerBackend
    hub: EventHub
    instance_key: bytes
