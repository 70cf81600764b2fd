"""A container's cgroup freezer as the host sees it (the tests read it, and thaw it by
hand when the engine cannot)."""

from __future__ import annotations

from pathlib import Path


class Cgroup:
    """The container's freezer: cgroup v1's ``freezer.state`` or v2's ``cgroup.freeze``."""

    def __init__(self, pid: int) -> None:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        v1 = [line.split(":", 2)[2] for line in lines if line.split(":")[1] == "freezer"]
        if v1:
            self.folder = Path("/sys/fs/cgroup/freezer" + v1[0])
            self.v2 = False
        else:
            self.folder = Path("/sys/fs/cgroup" + lines[0].split(":", 2)[2])
            self.v2 = True

    def frozen(self) -> bool:
        if self.v2:
            return "frozen 1" in (self.folder / "cgroup.events").read_text()
        return (self.folder / "freezer.state").read_text().strip() == "FROZEN"

    def tasks(self) -> list[str]:
        """The processes (threads) in the cgroup: none once it is gone with its container."""
        try:
            return (self.folder / ("cgroup.threads" if self.v2 else "tasks")).read_text().split()
        except FileNotFoundError:
            return []

    def runc_inside(self) -> list[str]:
        """The runc processes in the cgroup: an exec's process still being set up."""
        found = []
        for task in self.tasks():
            try:
                comm = Path(f"/proc/{task}/comm").read_text().strip()
            except OSError:
                continue  # ended meanwhile
            if comm.startswith("runc"):
                found.append(f"{task} {comm}")
        return found

    def thaw(self) -> None:
        if self.v2:
            (self.folder / "cgroup.freeze").write_text("0")
        else:
            (self.folder / "freezer.state").write_text("THAWED")
