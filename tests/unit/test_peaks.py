"""The git memory watch counts the test's own git processes only (tests run side by side)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.peaks import descends, git_peak


def test_a_child_descends_and_a_parent_does_not() -> None:
    with subprocess.Popen(["sh", "-c", "sleep 30 & wait"]) as shell:
        try:
            children = ""
            while not children:  # the shell's child appears once it has forked
                children = Path(f"/proc/{shell.pid}/task/{shell.pid}/children").read_text()
            grandchild = int(children.split()[0])
            assert descends(grandchild, os.getpid())
            assert descends(shell.pid, shell.pid)
            assert not descends(os.getpid(), shell.pid)
            assert not descends(os.getppid(), os.getpid())
        finally:
            shell.kill()


def test_the_watch_sees_a_git_of_this_test() -> None:
    with git_peak() as seen:
        git = subprocess.Popen(["git", "hash-object", "--stdin"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL)
        try:
            while max(seen) == 0:  # sampled every 20 ms while git waits for its input
                pass
        finally:
            git.communicate(b"x")
    assert max(seen) > 0
