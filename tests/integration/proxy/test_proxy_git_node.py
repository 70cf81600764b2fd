"""Real git (clone and push over smart HTTP) and real Node through the running proxy."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import trio
from conftest import SECRETS, Proxy
from proxy_fakes import FakeUpstream, GitServer

from appliance.sessions import AccessMode

NODE_CLIENT = r"""
const net = require('net'), tls = require('tls'), https = require('https');
const [port, auth, host, path] = process.argv.slice(1);
const sock = net.connect(Number(port), '127.0.0.1', () => {
  sock.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n` +
             `Proxy-Authorization: Basic ${Buffer.from(auth).toString('base64')}\r\n\r\n`);
});
sock.once('data', (head) => {
  if (!/^HTTP\/1\.1 200/.test(head.toString())) { console.error(head.toString()); process.exit(2); }
  const req = https.request({
    host, port: 443, path, method: 'POST',
    headers: {'x-api-key': 'placeholder-key', 'content-type': 'application/json'},
    createConnection: () => tls.connect({socket: sock, servername: host}),
  }, (res) => {
    let body = '';
    res.on('data', (c) => body += c);
    res.on('end', () => {
      console.log(JSON.stringify({status: res.statusCode, body}));
      process.exit(0);
    });
  });
  req.on('error', (e) => { console.error(String(e)); process.exit(3); });
  req.end('{"model":"x"}');
});
"""


async def run(cmd: list[str], cwd: Path, env: dict[str, str], *, ok: bool = True) -> str:
    with trio.fail_after(60):
        done = await trio.run_process(cmd, cwd=cwd, env=env, capture_stdout=True,
                                      capture_stderr=True, check=False)
    if ok:
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()
    assert done.returncode != 0, done.stdout.decode()
    return done.stderr.decode()


async def commit(repo: Path, env: dict[str, str], name: str, text: str, message: str) -> None:
    """A commit in ``repo`` that writes ``text`` to the file ``name``."""
    (repo / name).write_text(text)
    await run(["git", "add", "."], repo, env)
    await run(["git", "commit", "-qm", message], repo, env)


def git_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e"}


async def seed_remote(git_server: GitServer, tmp_path: Path, env: dict[str, str], name: str,
                      *refs: str) -> tuple[Path, Path]:
    """``owner/<name>.git`` on the git server (pushes allowed), its ``main`` holding one
    commit (and ``refs`` made from it), and the local repository that seeded it."""
    bare = git_server.root / "owner" / f"{name}.git"
    bare.parent.mkdir(exist_ok=True)
    await run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], tmp_path, env)
    await run(["git", "config", "http.receivepack", "true"], bare, env)
    seed = tmp_path / "seed"
    await run(["git", "init", "-q", "-b", "main", str(seed)], tmp_path, env)
    await commit(seed, env, "README", "hello\n", "seed")
    await run(["git", "push", "-q", str(bare), "main", *refs], seed, env)
    return bare, seed


async def clone(proxy: Proxy, tmp_path: Path, env: dict[str, str], name: str, session: str,
                mode: AccessMode = AccessMode.READ_WRITE) -> tuple[list[str], Path]:
    """A new session's git (its ``-c`` options through the proxy) and its clone of
    ``owner/<name>`` in ``tmp_path/work``."""
    sid, token = proxy.add_session(session, mode)
    via = ["git", "-c", f"http.proxy={proxy.url(sid, token)}",
           "-c", f"http.sslCAInfo={proxy.ca_path}"]
    await run([*via, "clone", "-q", f"https://github.com/owner/{name}.git", "work"], tmp_path,
              env)
    return via, tmp_path / "work"


async def test_git_clone_and_push_get_the_injected_basic_credential(
    proxy: Proxy, git_server: GitServer, tmp_path: Path
) -> None:
    env = git_env(tmp_path)
    bare, _ = await seed_remote(git_server, tmp_path, env, "repo")

    via, work = await clone(proxy, tmp_path, env, "repo", "git")
    assert (work / "README").read_text() == "hello\n"
    await commit(work, env, "CHANGE", "from the agent\n", "change")
    await run([*via, "push", "-q", "origin", "HEAD:clauderon/git"], work, env)
    log = await run(["git", "log", "--format=%s", "clauderon/git"], bare, env)
    assert log.split() == ["change", "seed"]
    # Every request carried the injected credential (the server refuses anything else).
    assert git_server.refused == 0
    assert len(git_server.seen) >= 4


async def test_git_server_refuses_without_the_injected_credential(
    git_server: GitServer, upstream_ca_path: Path, tmp_path: Path
) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"}
    (git_server.root / "owner").mkdir()
    with trio.fail_after(60):
        done = await trio.run_process(
            ["git", "-c", f"http.sslCAInfo={upstream_ca_path}", "ls-remote",
             f"https://127.0.0.1:{git_server.port}/owner/repo.git"],
            cwd=tmp_path, env=env, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode != 0
    assert git_server.refused >= 1


async def test_node_https_through_the_proxy(proxy: Proxy, fake: FakeUpstream) -> None:
    sid, token = proxy.add_session("node")
    env = {"PATH": os.environ["PATH"], "NODE_EXTRA_CA_CERTS": str(proxy.ca_path)}
    with trio.fail_after(60):
        done = await trio.run_process(
            ["node", "-e", NODE_CLIENT, str(proxy.port), f"{sid}:{token}", "api.anthropic.com",
             "/v1/messages"], env=env, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    answer = json.loads(done.stdout)
    assert answer["status"] == 200, answer
    seen = fake.seen[-1]
    assert seen.header("authorization") == [f"Bearer {SECRETS['anthropic_oauth_token']}"]
    assert seen.header("x-api-key") == []
    assert seen.body == b'{"model":"x"}'


async def test_a_session_pushes_its_own_branch_and_no_other(
    proxy: Proxy, git_server: GitServer, tmp_path: Path
) -> None:
    """The injected credential could move any ref of the remote: the proxy lets a push
    through only when every ref it updates is the session's own branch."""
    env = git_env(tmp_path)
    bare, _ = await seed_remote(git_server, tmp_path, env, "guarded", "main:clauderon/other",
                                "main:release")
    before = await run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], bare, env)

    via, work = await clone(proxy, tmp_path, env, "guarded", "mine")
    await commit(work, env, "CHANGE", "from the agent\n", "change")
    for attack in (["HEAD:main"], ["HEAD:clauderon/other"], ["--delete", "release"],
                   ["HEAD:refs/tags/v1"], ["HEAD:clauderon/mine", "HEAD:main"],
                   ["--force", "HEAD:refs/heads/clauderon/mine2"]):
        said = await run([*via, "push", "origin", *attack], work, env, ok=False)
        assert "403" in said, (attack, said)
    after = await run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], bare, env)
    assert after == before  # nothing moved on the remote
    await run([*via, "push", "-q", "origin", "HEAD:clauderon/mine"], work, env)  # its own
    assert (await run(["git", "log", "--format=%s", "clauderon/mine"], bare, env)).split() == [
        "change", "seed"]
    audit = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    refused = [a for a in audit if a.get("error") == "REF_FORBIDDEN"]
    assert len(refused) == 6 and all(a["status"] == 403 for a in refused)


def receive_pack_request(old: str, new: str, ref: str) -> bytes:
    """A push as git sends it (one ref update, then an empty pack): no pack is needed to
    point a ref at a commit the remote already has."""
    line = f"{old} {new} {ref}\0 report-status\n".encode()
    pack = b"PACK" + (2).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return b"%04x" % (len(line) + 4) + line + b"0000" + pack + hashlib.sha1(pack).digest()


async def test_a_push_spelled_with_percent_escapes_is_still_judged_as_a_push(
    proxy: Proxy, git_server: GitServer, tmp_path: Path
) -> None:
    """The agent writes the push by hand with curl, its service name percent-escaped: a
    server decodes the path (as a CGI server does) and runs git-receive-pack, so the proxy
    reads it as the push it is, and a branch not the session's stays as it was."""
    env = git_env(tmp_path)
    bare, _ = await seed_remote(git_server, tmp_path, env, "escaped")
    main = (await run(["git", "rev-parse", "main"], bare, env)).strip()
    before = await run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], bare, env)
    sid, token = proxy.add_session("sneaky")
    body = tmp_path / "push.bin"
    body.write_bytes(receive_pack_request("0" * 40, main, "refs/heads/release"))
    for service in ("git-receive-p%61ck", "git-receive-pack%2f", "git%2dreceive%2dpack"):
        said = await run(["curl", "-sS", "--max-time", "20", "--path-as-is",
                          "--proxy", proxy.url(sid, token), "--cacert", str(proxy.ca_path),
                          "-H", "content-type: application/x-git-receive-pack-request",
                          "--data-binary", f"@{body}", "-w", "\n%{http_code}",
                          f"https://github.com/owner/escaped.git/{service}"], tmp_path, env)
        assert said.endswith("\n403"), (service, said)
    after = await run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], bare, env)
    assert after == before


async def test_a_read_only_session_clones_and_fetches_but_never_pushes(
    proxy: Proxy, git_server: GitServer, tmp_path: Path
) -> None:
    """Real git through the proxy as a read-only session: clone and fetch (their
    git-upload-pack POSTs read) get the credential; the push is refused before upstream."""
    env = git_env(tmp_path)
    bare, seed = await seed_remote(git_server, tmp_path, env, "ro")

    via, work = await clone(proxy, tmp_path, env, "ro", "reader", AccessMode.READ_ONLY)
    assert (work / "README").read_text() == "hello\n"
    await commit(seed, env, "MORE", "more\n", "more")
    await run(["git", "push", "-q", str(bare), "main"], seed, env)
    await run([*via, "fetch", "-q", "origin"], work, env)
    fetched = await run(["git", "log", "--format=%s", "origin/main"], work, env)
    assert fetched.split() == ["more", "seed"]
    await run(["git", "commit", "-q", "--allow-empty", "-m", "change"], work, env)
    err = await run([*via, "push", "-q", "origin", "HEAD:clauderon/reader"], work, env,
                    ok=False)
    assert "403" in err or "read-only" in err
    branches = await run(["git", "branch", "--list"], bare, env)
    assert "clauderon/reader" not in branches
    assert git_server.refused == 0


async def test_a_push_larger_than_gits_post_buffer_goes_through_chunked(
    proxy: Proxy, git_server: GitServer, tmp_path: Path
) -> None:
    """A pack larger than ``http.postBuffer`` (1 MiB) is sent with chunked framing, after
    git's probe: the proxy reads the push's commands from the first chunks, judges them, and
    relays the rest as it arrives."""
    env = git_env(tmp_path)
    bare, _ = await seed_remote(git_server, tmp_path, env, "big")
    via, work = await clone(proxy, tmp_path, env, "big", "big")
    (work / "noise.bin").write_bytes(os.urandom(8 << 20))  # incompressible: a pack of 8 MiB
    await run(["git", "add", "noise.bin"], work, env)
    await run(["git", "commit", "-q", "-m", "noise"], work, env)
    await run([*via, "push", "-q", "origin", "HEAD:clauderon/big"], work, env)
    log = await run(["git", "log", "--format=%s", "clauderon/big"], bare, env)
    assert log.split() == ["noise", "seed"]
    posted = [s for s in git_server.seen if s.target.endswith("git-receive-pack")]
    assert max(len(s.body) for s in posted) > 8 << 20


async def test_a_session_pushes_its_branch_name_to_none_of_the_persons_other_repositories(
    proxy: Proxy, git_server: GitServer, tmp_path: Path
) -> None:
    """The injected credential reaches every repository the person's token does: the agent
    pushed its own branch name (the one ref a push may move) to another of them. Refused
    for the repository, before it is sent on; the same push to its own goes (the control)."""
    env = git_env(tmp_path)
    (tmp_path / "theirs").mkdir()
    other, _ = await seed_remote(git_server, tmp_path / "theirs", env, "notmine")
    await seed_remote(git_server, tmp_path, env, "repo")
    before = await run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], other, env)
    via, work = await clone(proxy, tmp_path, env, "repo", "wander")  # owner/repo: its own
    await commit(work, env, "CHANGE", "from the agent\n", "change")
    url = "https://github.com/owner/notmine.git"
    said = await run([*via, "push", url, "HEAD:clauderon/wander"], work, env, ok=False)
    assert "403" in said, said
    assert await run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], other,
                     env) == before  # nothing moved there
    audit = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    [refused] = [a for a in audit if a["status"] == 403]
    assert "owner/notmine is not one of this session's repositories" in refused["note"]
    await run([*via, "push", "-q", "origin", "HEAD:clauderon/wander"], work, env)
    assert git_server.refused == 0
