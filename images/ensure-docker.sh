#!/usr/bin/env bash
# Make sure a Docker engine is installed and answering on this host. Idempotent; run as root.
#
# - installs Debian's docker.io when dockerd is missing (one apt-get update, then install);
# - when `docker info` does not answer, starts dockerd in the background (hosts without
#   systemd) with default flags, logging to $CLAUDERON_DOCKERD_LOG (default under /var/log),
#   and waits up to $CLAUDERON_DOCKERD_WAIT seconds (default 30) for it to answer.
#
# The default docker0 bridge is kept on purpose: containers reach host services through its
# gateway address, and starting a dockerd with `--bridge none` deletes docker0.
#
# Neighbours: bootstrap-base.sh (needs a running engine) and agent/build.sh.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

wait_secs="${CLAUDERON_DOCKERD_WAIT:-30}"
log_file="${CLAUDERON_DOCKERD_LOG:-/var/log/dockerd.log}"

engine_answers() { docker info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "dockerd is missing and installing it needs root"
    log "dockerd missing: installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y docker.io
    command -v dockerd >/dev/null 2>&1 || die "docker.io installed but dockerd is still not on PATH"
fi

if engine_answers; then
    log "engine already answering"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "the engine is not answering and starting dockerd needs root"

if pgrep -x dockerd >/dev/null 2>&1; then
    # A dockerd is up but not answering yet (just started, or starting): wait for it
    # rather than launching a second one that would fight over /var/lib/docker.
    log "dockerd already running but not answering yet; waiting"
else
    if ! mkdir -p "$(dirname "$log_file")" 2>/dev/null || ! touch "$log_file" 2>/dev/null; then
        log_file="${TMPDIR:-/tmp}/dockerd.log"
    fi
    log "starting dockerd (log: $log_file)"
    # setsid: the engine must outlive this script and its caller's process group.
    setsid dockerd >>"$log_file" 2>&1 </dev/null &
fi

deadline=$((SECONDS + wait_secs))
until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "last lines of $log_file:"
        tail -n 20 "$log_file" >&2 2>/dev/null || true
        die "Docker engine did not answer within ${wait_secs}s"
    fi
    sleep 0.2
done
log "engine answering"
