"""The git host's writes beside a push: a fetch and Git LFS's objects pass, the person's
LFS locks do not (pure playbook)."""

from __future__ import annotations

import pytest

from proxy import githost


@pytest.mark.parametrize(("method", "path", "refused"), [
    ("POST", "/o/r.git/git-upload-pack", False),  # a fetch
    ("POST", "/o/r.git/info/lfs/objects/batch", False),  # LFS objects move no ref
    ("POST", "/o/r.git/info/lfs/locks/verify", False),  # LFS's look before a push
    ("GET", "/o/r.git/info/lfs/locks", False),
    # Every lock is the person's (the credential's user): forced or not, an unlock frees it.
    ("POST", "/o/r.git/info/lfs/locks/7/unlock", True),
    ("POST", "/o/r/info/lfs/locks/7/unlock", True),
    ("POST", "/o/r.git/info/lfs/locks", True),  # a lock holds the person's own push
    ("POST", "/o/r.git/info/lfs/objects/batch?x=1", True),
    ("POST", "/o/r.git/info/lfs/locks/verify/../7/unlock", True),
    ("POST", "/o/r.git/info/lfs/locks%2Fverify", True),
    ("PUT", "/o/r.git/info/lfs/objects/batch", True),
    ("DELETE", "/o/r.git/info/lfs/locks/7", True),
    ("POST", "/login/oauth/access_token", True),
])
def test_the_git_hosts_writes_beside_a_push_are_a_fetch_and_lfs_objects(
        method: str, path: str, refused: bool) -> None:
    assert (githost.refusal(method, path) is not None) is refused


UP = b'{"operation":"upload","objects":[]}'


@pytest.mark.parametrize(("path", "body", "says"), [
    ("/o/r.git/info/lfs/objects/batch", UP, None),  # its own repository
    ("/O/R/info/lfs/objects/batch", UP, None),  # any case, .git or not
    ("/p/s.git/info/lfs/objects/batch", UP, "p/s is not one of"),
    ("/p/s.git/info/lfs/objects/batch", b'{"operation":"download"}', None),  # a read
    ("/p/s.git/info/lfs/objects/batch", b'{"objects":[]}', "p/s is not one of"),
    ("/p/s.git/info/lfs/objects/batch",
     b'{"operation":"download","operation":"upload"}', "each key once"),
    ("/p/s.git/info/lfs/objects/batch",  # one key to Go's encoding/json: the last one wins
     b'{"operation":"download","OPERATION":"upload"}', "each key once"),
    ("/p/s.git/info/lfs/objects/batch",
     b'{"operation":"download","objects":[{"oid":"a","OID":"b"}]}', "each key once"),
    ("/p/s.git/info/lfs/objects/batch", b"[]", "cannot be checked"),
    ("/p/s.git/info/lfs/objects/batch", None, "read whole"),
    ("/p/s.git/git-upload-pack", b"0000", None),  # no batch: a fetch
])
def test_an_lfs_upload_lands_only_in_the_sessions_own_repositories(
        path: str, body: bytes | None, says: str | None) -> None:
    why = githost.batch_refusal(path, body, ("o/r",), "s")
    assert (why is None) == (says is None), why
    assert says is None or says in (why or ""), why
