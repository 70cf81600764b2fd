"""Secret files in ``CLAUDERON_HOME/secrets/``: one file per credential, named after it.

The lowest-precedence source (after the environment and 1Password). A file that anyone but
its owner can access is refused, never read: the message names the file and the ``chmod``
that fixes it, and the loader turns it into a warning so the other credentials still load.
Trailing whitespace (the newline an editor adds) is stripped.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRead:
    """A secret file's outcome: a value, a refusal message, or neither (no such file)."""

    value: str | None = None
    warning: str | None = None


def read_secret_file(secrets_dir: Path, name: str) -> FileRead:
    path = secrets_dir / name
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileRead()
    except OSError as exc:
        return FileRead(warning=f"{name}: cannot read secret file {path} ({exc.strerror})")
    if not stat.S_ISREG(st.st_mode):
        return FileRead(warning=f"{name}: secret file {path} is not a regular file; skipped")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        return FileRead(
            warning=(
                f"{name}: refusing secret file {path}: mode {mode:04o} lets group or others "
                f"read it; run `chmod 600 {path}`"
            )
        )
    try:
        value = path.read_text().rstrip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return FileRead(warning=f"{name}: cannot read secret file {path} ({reason})")
    if not value:
        return FileRead(warning=f"{name}: secret file {path} is empty; skipped")
    return FileRead(value=value)
