"""Benchmark: how soon supervisord brings a crashed service back, inside the appliance image.

Run: ``.venv/bin/python bench/appliance_restart.py [-n 5]``. Builds the appliance image when
stale (images/appliance/build.sh), deploys it with images/appliance/compose.yaml on a
temporary data folder (plain sessions: no agent image needed), then N rounds of: SIGKILL
each service and time (a) the new process appearing and (b) the service serving again (the
API answering on its socket, the proxy accepting on 127.0.0.1; the reconciler and the
shipper serve as soon as they run). Prints p50 and max per service and their ratio to the
2 s target, beside the floor: a ``sleep`` added to the same supervisord and killed the same
way. supervisord's loop reaps a dead child after one poll and starts it after the next, which
waits up to a second, unless something wakes it: the watcher `clauderon daemon` runs beside
it (``appliance/nudge.py``) does, for every program, the floor included. Never asserts.
Needs dockerd and docker-compose.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/appliance_restart.py`
    sys.path.insert(1, str(REPO))

from tests.support.appliance import Appliance, wait_for  # noqa: E402
from tests.support.appliance_image import (  # noqa: E402
    CONF,
    PROGRAMS,
    RESPAWN,
    Deployment,
    build_image,
)

TARGET_MS = 2000.0
#: A program added at run time through supervisorctl: the floor of any restart under it.
FLOOR = """
cat > /tmp/floor.conf <<'EOF'
[program:floor]
command=/bin/sleep 100000
autorestart=true
startsecs=0
EOF
grep -q floor.conf "$1" || printf '[include]\\nfiles = /tmp/floor.conf\\n' >> "$1"
supervisorctl -c "$1" reread >/dev/null && supervisorctl -c "$1" update >/dev/null
"""


def summary(name: str, values: list[float]) -> str:
    p50 = statistics.median(values)
    return (f"{name:<28} p50 {p50:7.0f} ms  max {max(values):7.0f} ms  "
            f"p50/2s {p50 / TARGET_MS:5.2f}  max/2s {max(values) / TARGET_MS:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="rounds (each kills every service)")
    args = parser.parse_args()
    build_image()
    with tempfile.TemporaryDirectory(prefix="bench-appliance-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)
        (root / "repos").mkdir()
        app = Appliance(root / "data")
        dep = Deployment(root, app=app, repos=root / "repos", credentials={})
        try:
            dep.up()
            floor = _add_floor(dep)
            spawned: dict[str, list[float]] = {p: [] for p in (*PROGRAMS, "floor")}
            serving: dict[str, list[float]] = {p: [] for p in PROGRAMS}

            def running() -> bool:
                states = dep.program_states()
                return all(states.get(p) == "RUNNING" for p in PROGRAMS)

            for _ in range(args.n):
                for name in PROGRAMS:
                    wait_for(running, timeout=60, what="every program RUNNING")
                    out = dep.exec("bash", "-c", RESPAWN, "respawn", name).stdout.split()
                    spawned[name].append(float(out[2]))
                    serving[name].append(float(out[3]))
                if floor:
                    # [p]: the pattern must not match the script's own text.
                    out = dep.exec("bash", "-c", RESPAWN.replace("bin/clauderon-$name",
                                                                 "/bin/slee[p] 100000"),
                                   "respawn", "floor").stdout.split()
                    spawned["floor"].append(float(out[2]))
        finally:
            dep.down()
            app.cleanup()
    print(f"appliance image, {args.n} round(s); SIGKILL -> new process / -> serving")
    for name in PROGRAMS:
        print(summary(f"{name} new process", spawned[name]))
        print(summary(f"{name} serving", serving[name]))
    if spawned["floor"]:
        print(summary("floor (sleep) new process", spawned["floor"]))


def _add_floor(dep: Deployment) -> bool:
    """Add the floor program to the running supervisord: its config in this container's
    writable layer includes one more file (the image and the next container are untouched)."""
    done = dep.exec("bash", "-c", FLOOR, "floor", CONF, check=False)
    return done.returncode == 0 and "floor" in dep.program_states()


if __name__ == "__main__":
    main()
