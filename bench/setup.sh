#!/bin/sh
# Installs what bench/proxy.py needs, and nothing that is already there:
#   - nginx (the Debian package nginx-light), the fake upstream;
#   - mitmproxy 11.0.2 in a virtualenv of its own at .venv/mitmproxy-venv (its pinned h11
#     and h2 versions conflict with the project's, so it cannot share .venv).
# Run from anywhere: sh bench/setup.sh. Safe to run again.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv/mitmproxy-venv"
mitmproxy_version=11.0.2

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "nginx: present"
else
    echo "nginx: installing nginx-light"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light
fi

if [ -x "$venv/bin/mitmdump" ] \
    && "$venv/bin/python" -m pip show mitmproxy 2>/dev/null \
        | grep -qx "Version: $mitmproxy_version"; then
    echo "mitmdump: present ($venv)"
else
    echo "mitmdump: installing mitmproxy==$mitmproxy_version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "mitmproxy==$mitmproxy_version"
fi
echo "ready: .venv/bin/python bench/proxy.py"
