#!/usr/bin/env bash
# Build the appliance image clauderon-appliance:<version> (also tagged :latest) when its
# inputs changed; otherwise say it is up to date and stop.
#
# Usage: images/appliance/build.sh [--force | --check]
#   --force  build even when an image with the same inputs exists
#   --check  build nothing; exit 0 when up to date, 3 when a build is needed
#
# What goes into the build context (a temporary folder), and nothing else:
#   Dockerfile, requirements.txt   this folder's
#   extra-ca/                      the host's extra CA certificates (a TLS-inspecting network)
#   src/                           the files git tracks of the Python project (never an
#                                  untracked .env, secrets/, .venv or node_modules), and the
#                                  web UI built here into api/static/ (Node >= 20.19)
# The build reads no environment variable and gets no build argument but BASE, so no
# credential of this shell can reach a layer. The image carries the label
# clauderon.inputs=<sha256 over the context and the base image id>.
#
# Environment:
#   CLAUDERON_APPLIANCE_IMAGE  tag to build (default: clauderon-appliance:<version>)
#   CLAUDERON_APPLIANCE_BASE   base image (default: debian:bookworm-slim, made by
#                              ../bootstrap-base.sh when missing)
#   CLAUDERON_EXTRA_CA_DIR     host folder whose *.crt files are trusted in the image
#                              (default: /usr/local/share/ca-certificates; empty: none)
#
# Neighbours: ../ensure-docker.sh, ../bootstrap-base.sh, ../build-lib.sh, Dockerfile,
# compose.yaml, lock.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name=build-appliance
# shellcheck source=../build-lib.sh
. "$here/../build-lib.sh"
base="${CLAUDERON_APPLIANCE_BASE:-debian:bookworm-slim}"
label=clauderon.inputs

parse_args 27 "$@"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)"
[ -n "$version" ] || die "no version in $root/pyproject.toml"
image="${CLAUDERON_APPLIANCE_IMAGE:-clauderon-appliance:$version}"
git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || die "$root is not a git checkout: the image is built from the files git tracks"
need_engine_and_base

# --- the web UI, built on this host (Debian's Node 18 in the image is too old) ----------
web="$root/api/web"
static="$root/api/static"
webui_stale() {
    [ -f "$static/index.html" ] || return 0
    [ -n "$(find "$web" -path "$web/node_modules" -prune -o -type f -newer "$static/index.html" \
        -print -quit)" ]
}
if webui_stale; then
    [ "$check" -eq 0 ] || { echo "$image needs a rebuild (the web UI is not built)"; exit 3; }
    command -v node >/dev/null 2>&1 || die "node is not installed: the web UI needs Node >= 20.19"
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);
             process.exit(a>20||(a===20&&b>=19)?0:1)' \
        || die "node $(node --version) is too old for the web UI: install Node >= 20.19"
    if [ ! -d "$web/node_modules" ] || [ "$web/package-lock.json" -nt "$web/node_modules" ]; then
        log "installing the web UI's packages (npm ci)"
        npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
    fi
    log "building the web UI"
    npm run --prefix "$web" build --silent
fi

# --- the context ------------------------------------------------------------------------
context="$(mktemp -d "${TMPDIR:-/tmp}/clauderon-appliance-context.XXXXXX")"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$here/requirements.txt" "$context/"
mkdir -p "$context/src/api"
add_host_cas "$context/extra-ca"
# Tracked files only (as they are in the working tree), less the browser app's sources.
(
    cd "$root"
    git ls-files -z -- pyproject.toml README.md supervisord.conf appliance api proxy cli \
        images ':!:api/web' ':!:images/appliance' \
        | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -c -f - | tar -x -f - -C "$context/src"
)
cp -r "$static" "$context/src/api/static"

latest="${image%:*}:latest"
tags=(--tag "$image")
[ "$latest" = "$image" ] || tags+=(--tag "$latest")
build_when_changed "$(inputs_hash --modes)" \
    --label "org.opencontainers.image.title=clauderon-appliance" \
    --label "org.opencontainers.image.version=$version" \
    "${tags[@]}"
