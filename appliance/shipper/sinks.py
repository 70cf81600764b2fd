"""What a sink is: something that takes a batch of audit lines and acknowledges it.

A sink's ``send`` returns only once the batch is safely stored on its side, or raises
:class:`SinkFailed`; the shipper then retries the same batch later, so a sink may see a
batch twice but never misses one. Implementations: :mod:`.archive`, :mod:`.httpsink`.
"""

from __future__ import annotations

from typing import Protocol

from appliance.errors import ClauderonError
from appliance.shipper.lines import Batch


class SinkFailed(ClauderonError):
    """A sink did not acknowledge a batch; the batch is kept and sent again."""

    http_status = 502
    exit_code = 69
    code = "sink_failed"


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, batch: Batch) -> None:
        """Store ``batch`` durably or raise :class:`SinkFailed`."""


