"""The listening services raise their own open-files limit, within what the system allows
(a real child process started with a low soft limit, as a workstation's shell gives)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

PROBE = (
    "import resource, sys\n"
    "from appliance.service import raise_open_files\n"
    "got = raise_open_files(int(sys.argv[1]))\n"
    "print(got, resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
)


def probe(soft: int, hard: int, want: int) -> tuple[int, int]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    out = subprocess.run([sys.executable, "-c", PROBE, str(want)], preexec_fn=limit,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def test_a_low_soft_limit_is_raised_to_what_is_wanted_or_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.fail(f"this machine's hard limit on open files ({hard}) leaves no room to test")
    top = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    assert probe(256, top, top // 2) == (top // 2, top // 2)  # what is wanted
    assert probe(256, top, top * 4) == (top, top)  # never above the hard limit
    assert probe(top, top, 512) == (top, top)  # never lower than it was
