#!/usr/bin/env bash
# Build the agent image when its inputs changed; otherwise say it is up to date and stop.
#
# Usage: images/agent/build.sh [--force | --check]
#   --force  build even when an image with the same inputs exists
#   --check  build nothing; exit 0 when up to date, 3 when a build is needed
#
# The build context is a temporary copy of this folder (Dockerfile + extra-ca/) to which the
# host's extra CA certificates are added, so a TLS-inspecting network works inside the build
# without host certificates ever landing in the repository. The image carries the label
# clauderon.inputs=<sha256 over the Dockerfile, every certificate in the context and the
# base image id>; an image with the same label means nothing to do.
#
# Environment:
#   CLAUDERON_AGENT_IMAGE   tag to build (default: clauderon-agent:latest)
#   CLAUDERON_AGENT_BASE    base image (default: debian:bookworm-slim, built by
#                           ../bootstrap-base.sh when missing)
#   CLAUDERON_EXTRA_CA_DIR  host folder whose *.crt files are trusted in the image
#                           (default: /usr/local/share/ca-certificates; empty: none)
#
# Neighbours: ../ensure-docker.sh (engine), ../bootstrap-base.sh (base image), Dockerfile.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${CLAUDERON_AGENT_IMAGE:-clauderon-agent:latest}"
base="${CLAUDERON_AGENT_BASE:-debian:bookworm-slim}"
extra_ca_dir="${CLAUDERON_EXTRA_CA_DIR-/usr/local/share/ca-certificates}"
label=clauderon.inputs

log() { printf 'build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
check=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --check) check=1 ;;
        -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $arg (usage: build.sh [--force | --check])" ;;
    esac
done

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

context="$(mktemp -d "${TMPDIR:-/tmp}/clauderon-agent-context.XXXXXX")"
trap 'rm -rf "$context"' EXIT

cp "$here/Dockerfile" "$context/Dockerfile"
mkdir -p "$context/extra-ca"
find "$here/extra-ca" -maxdepth 1 -type f -name '*.crt' -exec cp {} "$context/extra-ca/" \;
if [ -n "$extra_ca_dir" ] && [ -d "$extra_ca_dir" ]; then
    while IFS= read -r -d '' crt; do
        cp "$crt" "$context/extra-ca/host-$(basename "$crt")"
    done < <(find "$extra_ca_dir" -type f -name '*.crt' -print0)
fi

# Hash of everything the build reads: each context file's path and content, then the base
# image id (a rebuilt base means a rebuilt agent image).
inputs_hash() {
    {
        (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
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
started=$SECONDS
docker build --network host \
    --build-arg "BASE=$base" \
    --label "$label=$hash" \
    --tag "$image" \
    "$context"
echo "built $image in $((SECONDS - started))s (inputs $hash)"
