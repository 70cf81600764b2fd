"""Print the appliance image's Python lock: the runtime dependencies of ``clauderon``, and
theirs, at the versions installed in the environment that runs this (the development
``.venv``, where the tests pass), plus the build backend for our own wheel.

    .venv/bin/python images/appliance/lock.py > images/appliance/requirements.txt

``tests/unit/test_appliance_files.py`` checks the lock still covers pyproject.toml.
"""

from __future__ import annotations

import importlib.metadata as md
import re

from packaging.requirements import Requirement

#: Builds our wheel inside the image without reaching an index (``--no-build-isolation``).
BUILD = ("setuptools==80.9.0",)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str) -> dict[str, str]:
    seen: dict[str, str] = {}
    todo = [Requirement(r) for r in md.requires(root) or []]
    while todo:
        req = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        if norm(req.name) in seen:
            continue
        dist = md.distribution(req.name)
        seen[norm(req.name)] = dist.version
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


def main() -> None:
    print("# The appliance image's Python packages, pinned. Made by images/appliance/lock.py")
    print("# from the development environment; do not edit by hand.")
    for name, version in sorted(closure("clauderon").items()):
        print(f"{name}=={version}")
    print("# build backend of our own wheel")
    print(*BUILD, sep="\n")


if __name__ == "__main__":
    main()
