#!/usr/bin/env bash
# Set up everything Clauderon needs on this machine. Idempotent; safe to run every time.
#
# Usage: appliance/setup.sh [--test]
#   (no flag)  what the appliance needs: host tools, the Python environment (.venv), a running
#              Docker engine, the base and agent images, the built web UI
#   --test     also what the test suite needs: Chromium for the browser tests
#
# Neighbours: appliance/run (runs the appliance after this), tests/run (runs the tests after
# this), images/ensure-docker.sh, images/bootstrap-base.sh, images/agent/build.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

log() { printf 'setup: %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing packages: ${missing[*]} (install them with apt-get as root)"
        exit 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Host tools: git for worktrees, tmux/curl for attach and checks, debootstrap for the base
# image, Node for the web UI build.
apt_install git curl tmux debootstrap ca-certificates
command -v node >/dev/null 2>&1 || apt_install nodejs npm
if [ "$want_tests" -eq 1 ]; then
    # docker-compose: the appliance tests deploy images/appliance/compose.yaml for real.
    # zsh, fish: the completion tests load `clauderon completion zsh|fish` in each shell.
    # nginx-light: the proxy benchmark's upstream (its smoke test runs it).
    apt_install chromium nix-bin docker-compose zsh fish nginx-light
fi

# Python environment.
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.clauderon-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing Python packages"
    if ! { .venv/bin/pip install -q --upgrade pip \
            && .venv/bin/pip install -q -e '.[dev]'; } > .venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        log "installing Python packages failed (log above)"
        exit 1
    fi
    touch "$stamp"
fi

# Docker engine and images.
bash images/ensure-docker.sh
bash images/bootstrap-base.sh
bash images/agent/build.sh

# The web UI, built into api/static/ (served by the API at /).
if [ -f api/web/package.json ]; then
    if [ ! -d api/web/node_modules ] || [ api/web/package-lock.json -nt api/web/node_modules ]; then
        log "installing web UI packages"
        npm ci --prefix api/web --no-audit --no-fund --loglevel=error
    fi
    log "building the web UI"
    npm run --prefix api/web build --silent
fi
log "ready"
