"""The title of the pull request the appliance opens for the person, on the real appliance and
a fake GitHub (as ``test_pull_requests``): it is the agent's commit subject, written on the
person's GitHub, where nothing marks what it hides. A bidi override reordered it for everyone
who reads it there (``fix<RLO>hs.txt`` drawn ``fixtxt.sh``), a zero-width space or a tag
letter hid in it, an escape sequence went to whoever reads it on a terminal. The agent
commits in its real container as uid 1000; the person pushes with the real CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import user_git
from tests.integration.test_pull_requests import app, cli_json, in_container, origin
from tests.support.agent_app import create
from tests.support.appliance import Appliance
from tests.support.fake_github import FakeGitHub

pytestmark = pytest.mark.docker
__all__ = ["app", "origin"]  # the fixtures, as test_pull_requests makes them

#: The subject: U+202E, U+200B, U+2060 (as UTF-8 octets), ESC and a tag letter in it.
SUBJECT = (r"fix the typo\342\200\256hs.txt\342\200\213 in\342\201\240 docs\033[2J"
           r"\363\240\201\201")


def test_a_pull_requests_title_shows_what_the_agents_subject_hid(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    s = create(app, origin, "hid")
    code, out = in_container(app, s, (
        f"echo x > x.txt && git add x.txt && git commit -qm \"$(printf '{SUBJECT}')\" && "
        "git log -1 --format=%s | od -An -c"))
    assert code == 0 and "342" in out and "033" in out, out  # the subject holds them
    cli_json(app, "push", "hid", "--pr")
    title = github.pull(1)["title"]
    assert title == "fix the typo<U+202E>hs.txt<U+200B> in<U+2060> docs[2J<U+E0041>", title


#: The agent's newest commits carry an SSH signature and an S/MIME one (``gpgsig``), each
#: the kind a person's git hands a program of its own to check when it shows signatures.
SIGNED = r"""
set -e
who='a <a@b> 1700000000 +0000'
for kind in 'SSH SIGNATURE' 'SIGNED MESSAGE'; do
  printf 'tree %s\nparent %s\nauthor %s\ncommitter %s\n' "$(git rev-parse 'HEAD^{tree}')" \
    "$(git rev-parse HEAD)" "$who" "$who" > /tmp/c
  printf 'gpgsig -----BEGIN %s-----\n x\n -----END %s-----\n\nsigned\n' "$kind" "$kind" >> /tmp/c
  git reset -q --soft "$(git hash-object -t commit -w /tmp/c)"
done
"""


def test_titling_a_pull_request_runs_no_signature_checker_on_the_agents_commit(
        app: Appliance, origin: Path, github: FakeGitHub, tmp_path: Path) -> None:
    """The person shows signatures in their repository's log (``log.showSignature``) and
    checks SSH and S/MIME ones with programs of their own. The title is read there by host
    git's ``log`` on the agent's commit, which handed each signature the agent wrote to the
    person's program: only ``gpg.program`` was turned off, not the SSH and X.509 ones."""
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    checker = tmp_path / "checker"
    checker.write_text(f"#!/bin/sh\ntouch {markers}/\"$1\"\n")
    checker.chmod(0o755)
    for key, value in (("log.showSignature", "true"), ("gpg.ssh.program", str(checker)),
                       ("gpg.x509.program", str(checker)),
                       ("gpg.ssh.allowedSignersFile", str(checker))):
        user_git(origin, "config", key, value)
    s = create(app, origin, "signed")
    code, out = in_container(app, s, SIGNED)
    assert code == 0, out
    cli_json(app, "push", "signed", "--pr")
    assert github.pull(1)["title"] == "signed"
    assert sorted(p.name for p in markers.iterdir()) == []
