"""What an answer's head says of its body, for the masking (pure): whether it may carry a
credential re-encoded (text, not data) and whether it is compressed (:mod:`proxy.scrub`
cannot read a body it does not see as sent).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Media types whose bodies are data, not text (a pack, an archive, an image): no service
#: echoes a request's header into one escaped, and reading them for escapes would cost a
#: clone through the proxy's one loop some forty times the time.
_DATA_TYPES = (b"application/x-git-", b"application/octet-stream", b"application/zip",
               b"application/gzip", b"application/x-tar", b"application/pdf",
               b"application/wasm", b"image/", b"audio/", b"video/", b"font/")


def escapable(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether an answer's body may carry the credential re-encoded: any body but one whose
    ``Content-Type`` names data (:data:`_DATA_TYPES`); text, JSON, HTML, an event stream
    and a body of no stated type may."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return not value.strip().lower().startswith(_DATA_TYPES)
    return True


def coding(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The first content coding an answer's head names other than ``identity`` (its body
    is then no plain text to mask), or None."""
    for name, value in headers:
        if name.lower() == b"content-encoding":
            for part in value.split(b","):
                if (token := part.strip().lower()) and token != b"identity":
                    return token
    return None
