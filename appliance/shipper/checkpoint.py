"""The durable position: which file (device + inode), how far (bytes), and the archive mark.

Written after every acknowledged batch to ``CLAUDERON_HOME/shipper/checkpoint.json`` by
writing a temporary file, fsyncing it and renaming it over the old one, so a reader (the
shipper after a crash) sees either the old checkpoint or the new one, never half of one.
``head`` fingerprints the file's first bytes: an inode number can be reused once a file is
deleted, and a file whose start differs is not the one we were reading.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.durable import replace_file
from appliance.errors import ConfigError

VERSION = 1
#: How many leading bytes of a file fingerprint it.
HEAD_BYTES = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class FileId:
    dev: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileId:
        return cls(dev=st.st_dev, ino=st.st_ino)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    file: FileId
    offset: int
    head: str  # sha256 hex of the file's first head_len bytes
    head_len: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveMark:
    """The archive file last written and its size once the last batch was acknowledged."""

    name: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    position: Position | None = None
    archive: ArchiveMark | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {"version": VERSION, "position": None, "archive": None}
        if self.position is not None:
            p = self.position
            body["position"] = {"dev": p.file.dev, "ino": p.file.ino, "offset": p.offset,
                                "head": p.head, "head_len": p.head_len}
        if self.archive is not None:
            body["archive"] = {"name": self.archive.name, "size": self.archive.size}
        return json.dumps(body, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        body = json.loads(text)
        if body.get("version") != VERSION:
            raise ValueError(f"unknown checkpoint version {body.get('version')!r}")
        pos, arc = body.get("position"), body.get("archive")
        return cls(
            position=None if pos is None else Position(
                file=FileId(dev=int(pos["dev"]), ino=int(pos["ino"])),
                offset=int(pos["offset"]), head=str(pos["head"]),
                head_len=int(pos["head_len"])),
            archive=None if arc is None else ArchiveMark(name=str(arc["name"]),
                                                        size=int(arc["size"])),
        )


def fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def load_checkpoint(path: Path) -> Checkpoint:
    """The saved checkpoint, or an empty one when none was ever written."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Checkpoint()
    try:
        return Checkpoint.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a valid shipper checkpoint ({exc}); move it away to ship "
            "audit.jsonl again from its start"
        ) from exc


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` atomically and durably (:func:`appliance.durable.replace_file`)."""
    replace_file(path, checkpoint.to_json().encode())
