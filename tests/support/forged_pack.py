"""A pack whose index lies: the agent's shell script that writes one.

A pack's ``.idx`` names each object in the pack, and git believes it without hashing what
it reads there (it checks a name only where it reads a named commit or tree itself). The
script packs one object of the agent's and rewrites the index to give it another name, then
dates the pack into the future (git looks in the newest pack first).
"""

from __future__ import annotations

#: Rewrites a one-object pack's index (``$1``) to name its object ``$2`` (hex).
_REWRITE = """
import hashlib, struct, sys
path, name = sys.argv[1], bytes.fromhex(sys.argv[2])
data = bytearray(open(path, "rb").read())
assert struct.unpack(">I", data[8 + 255 * 4:8 + 256 * 4])[0] == 1
data[8:8 + 1024] = b"".join(struct.pack(">I", int(i >= name[0])) for i in range(256))
data[8 + 1024:8 + 1024 + 20] = name
data[-20:] = hashlib.sha1(bytes(data[:-20])).digest()
open(path, "wb").write(bytes(data))
"""


def forge(content: str, named: str) -> str:
    """A shell script, run in the agent's repository: the object ``content`` names (a
    revision, or a shell variable's ``$name``) is packed as the object ``named`` names; it
    prints ``lies=<name>`` once the agent's own git reads the forged content under that
    name."""
    return f"""
        set -e
        named=$(git rev-parse "{named}")
        p=$(git rev-parse "{content}" | git pack-objects -q .git/objects/pack/pack)
        chmod u+w .git/objects/pack/pack-$p.idx
        python3 -c '{_REWRITE}' .git/objects/pack/pack-$p.idx "$named"
        touch -d 2030-01-01 .git/objects/pack/pack-$p.*
        git cat-file -p "$named" >/dev/null 2>&1 || echo "lies=$named"
        """


def two_faced(source: str, mib: int) -> str:
    """A shell script, run in the agent's repository: commits ``mib`` MiB of ``source`` (a
    device: ``/dev/zero``, ``/dev/urandom``) as ``big``, packs it with the fork, and packs a
    2-byte blob in a newer pack under the big blob's name; it prints ``blob=<name>`` and,
    read by the agent's own git, that blob's size (2: the newer pack answers first)."""
    return f"""
        set -e
        head -c $(({mib} << 20)) {source} > big && git add big && git commit -qm big
        p=$(git rev-parse HEAD:big origin/main | git pack-objects -q .git/objects/pack/pack)
        touch -d 2029-01-01 .git/objects/pack/pack-$p.*
        small=$(echo x | git hash-object -w --stdin) blob=$(git rev-parse HEAD:big)
        echo "blob=$blob"
        """ + forge("$small", "$blob") + 'git cat-file -s "$blob"\n'
