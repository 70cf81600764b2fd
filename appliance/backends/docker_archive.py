"""Files as the tar stream Docker's ``put_archive`` unpacks into a container (pure).

Every entry is a regular file owned by root with its own mode, named relative to ``/``;
folders it needs are made by the engine (root, 0755). No link, device or folder entry is
ever written, so the archive cannot change anything but the files it names.
"""

from __future__ import annotations

import io
import tarfile
import time

from appliance.backends.base import SpecFile


def tar_of(files: tuple[SpecFile, ...], *, mtime: float | None = None) -> bytes:
    buf = io.BytesIO()
    when = int(time.time() if mtime is None else mtime)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in files:
            if not f.path.startswith("/") or ".." in f.path.split("/"):
                raise ValueError(f"not an absolute, plain path: {f.path}")
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.size = len(f.content)
            info.mode = f.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = when
            tar.addfile(info, io.BytesIO(f.content))
    return buf.getvalue()
