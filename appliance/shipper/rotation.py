"""Rotated audit files: naming, choosing, pruning (pure) and gzipping (blocking I/O).

``audit.jsonl`` is renamed to ``audit.jsonl.<UTC stamp>`` (sortable, unique: a rotation
needs a full file), read to its end by the shipper, then compressed to
``audit.jsonl.<stamp>.gz``; the newest ``keep`` compressed files are kept.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

_STAMP = re.compile(r"^\d{8}T\d{12}Z$")
PART = ".part"


def rotated_name(base: str, now: datetime) -> str:
    return f"{base}.{now.strftime('%Y%m%dT%H%M%S%f')}Z"


def is_rotated(name: str, base: str) -> bool:
    """An uncompressed rotated file of ``base``."""
    return name.startswith(base + ".") and bool(_STAMP.match(name[len(base) + 1:]))


def is_compressed(name: str, base: str) -> bool:
    return name.endswith(".gz") and is_rotated(name[:-3], base)


def to_prune(names: Sequence[str], base: str, keep: int) -> list[str]:
    """Compressed rotated files beyond the newest ``keep``, oldest first."""
    done = sorted(n for n in names if is_compressed(n, base))
    return done[:max(0, len(done) - keep)]


def list_rotated(folder: Path, base: str) -> list[Path]:
    """Uncompressed rotated files, oldest first."""
    return sorted(p for p in folder.iterdir() if is_rotated(p.name, base))


def compress(path: Path) -> Path:
    """``path`` -> ``path.gz`` (durably, via a ``.part`` file), then remove ``path``."""
    target = path.with_name(path.name + ".gz")
    part = target.with_name(target.name + PART)
    try:
        with path.open("rb") as src, gzip.open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        with part.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(part, 0o600)
    except OSError:
        part.unlink(missing_ok=True)  # a full disk: the file stays whole, no half copy
        raise
    os.replace(part, target)
    path.unlink()
    return target


def tidy(folder: Path, base: str, keep: int) -> list[str]:
    """Remove leftover ``.part`` files and compressed files beyond ``keep``; names removed."""
    names = [p.name for p in folder.iterdir()]
    gone = [n for n in names if n.startswith(base + ".") and n.endswith(PART)]
    gone += to_prune(names, base, keep)
    for name in gone:
        (folder / name).unlink(missing_ok=True)
    return gone
