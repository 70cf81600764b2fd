"""How much of an agent's object folder a view reads (real folders, no git)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import shadow
from appliance.errors import GitError
from appliance.hostgit import Owner


def test_a_view_stops_reading_a_folder_of_objects_at_its_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fan-out folder of more object-named files than a view takes (millions were held
    as a list of names before they were counted) is read no further than the limit."""
    flood = tmp_path / "ws" / ".git" / "objects" / "ee"
    flood.mkdir(parents=True)
    for i in range(1000):
        (flood / f"{i:038x}").touch()
    monkeypatch.setattr(shadow, "VIEW_LIMIT", 64)
    read = [0]
    listing = os.scandir

    class Counted:
        def __init__(self, fd: int) -> None:
            self.entries = listing(fd)

        def __enter__(self) -> Iterator[os.DirEntry[str]]:
            return self

        def __iter__(self) -> Iterator[os.DirEntry[str]]:
            return self

        def __next__(self) -> os.DirEntry[str]:
            entry = next(self.entries)
            read[0] += 1
            return entry

        def __exit__(self, *_: object) -> None:
            self.entries.close()

    monkeypatch.setattr(os, "scandir", Counted)
    with pytest.raises(GitError, match="more than 64"):
        shadow.object_view(tmp_path / "view", tmp_path / "ws", owner=Owner(uid=1000, gid=1000))
    assert read[0] <= 65, f"read {read[0]} entries past a limit of 64"
