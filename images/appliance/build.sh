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
# Neighbours: ../ensure-docker.sh, ../bootstrap-base.sh, Dockerfile, compose.yaml, lock.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base="${CLAUDERON_APPLIANCE_BASE:-debian:bookworm-slim}"
extra_ca_dir="${CLAUDERON_EXTRA_CA_DIR-/usr/local/share/ca-certificates}"
label=clauderon.inputs

log() { printf 'build-appliance: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
check=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --check) check=1 ;;
        -h | --help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $arg (usage: build.sh [--force | --check])" ;;
    esac
done

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)"
[ -n "$version" ] || die "no version in $root/pyproject.toml"
image="${CLAUDERON_APPLIANCE_IMAGE:-clauderon-appliance:$version}"
git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || die "$root is not a git checkout: the image is built from the files git tracks"
docker info >/dev/null 2>&1 || die "Docker engine not answering (run images/ensure-docker.sh)"

if ! docker image inspect "$base" >/dev/null 2>&1; then
    [ "$base" = debian:bookworm-slim ] || die "base image $base not found"
    if [ "$check" -eq 1 ]; then
        echo "$image needs a rebuild (base image $base missing)"
        exit 3
    fi
    log "base image $base missing: bootstrapping it"
    "$here/../bootstrap-base.sh"
fi

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
mkdir -p "$context/extra-ca" "$context/src/api"
if [ -n "$extra_ca_dir" ] && [ -d "$extra_ca_dir" ]; then
    while IFS= read -r -d '' crt; do
        cp "$crt" "$context/extra-ca/host-$(basename "$crt")"
    done < <(find "$extra_ca_dir" -type f -name '*.crt' -print0)
fi
# Tracked files only (as they are in the working tree), less the browser app's sources.
(
    cd "$root"
    git ls-files -z -- pyproject.toml README.md supervisord.conf appliance api proxy cli \
        images ':!:api/web' ':!:images/appliance' \
        | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -c -f - | tar -x -f - -C "$context/src"
)
cp -r "$static" "$context/src/api/static"

# Hash of everything the build reads: each context file's path, mode and content, then
# the base image id (a rebuilt base means a rebuilt image).
inputs_hash() {
    {
        (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z \
            | xargs -0 stat -c '%a %n' && find . -type f -print0 | LC_ALL=C sort -z \
            | xargs -0 sha256sum)
        printf 'base %s %s\n' "$base" "$(docker image inspect -f '{{.Id}}' "$base")"
    } | sha256sum | cut -d' ' -f1
}
hash="$(inputs_hash)"

current="$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
if [ "$current" = "$hash" ] && [ "$force" -eq 0 ]; then
    echo "$image is up to date (inputs $hash)"
    exit 0
fi
if [ "$check" -eq 1 ]; then
    echo "$image needs a rebuild (inputs $hash, image has ${current:-none})"
    exit 3
fi

log "building $image (inputs $hash)"
previous="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
started=$SECONDS
latest="${image%:*}:latest"
tags=(--tag "$image")
[ "$latest" = "$image" ] || tags+=(--tag "$latest")
docker build --network host \
    --build-arg "BASE=$base" \
    --label "$label=$hash" \
    --label "org.opencontainers.image.title=clauderon-appliance" \
    --label "org.opencontainers.image.version=$version" \
    "${tags[@]}" \
    "$context"
# The image this build replaced, once untagged, is ours and nothing names it: remove it
# (unless a container still runs it: then the engine refuses, and that is fine).
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ] \
        && [ "$(docker image inspect -f '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
fi
echo "built $image in $((SECONDS - started))s (inputs $hash)"
