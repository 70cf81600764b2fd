# What the image builds share (sourced by agent/build.sh and appliance/build.sh): their
# arguments, the engine and base image checks, the host's extra CA certificates, the hash of
# a build's inputs, and the build itself, which happens only when that hash changed.
#
# The script that sources it sets `name` (its log prefix) first, and `image`, `base`,
# `label` and `context` before the functions that read them.

log() { printf '%s: %s\n' "$name" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# parse_args LAST_HELP_LINE ARG...: sets `force` and `check`; --help prints the script's
# header comment (its lines 2 to LAST_HELP_LINE).
parse_args() {
    local help=$1 arg
    shift
    force=0
    check=0
    for arg in "$@"; do
        case "$arg" in
            --force) force=1 ;;
            --check) check=1 ;;
            -h | --help) sed -n "2,${help}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown argument: $arg (usage: build.sh [--force | --check])" ;;
        esac
    done
}

# The engine answers, and the base image is there (the default one is bootstrapped).
need_engine_and_base() {
    docker info >/dev/null 2>&1 || die "Docker engine not answering (run images/ensure-docker.sh)"
    docker image inspect "$base" >/dev/null 2>&1 && return 0
    [ "$base" = debian:bookworm-slim ] || die "base image $base not found"
    if [ "$check" -eq 1 ]; then
        echo "$image needs a rebuild (base image $base missing)"
        exit 3
    fi
    log "base image $base missing: bootstrapping it"
    "$(dirname "${BASH_SOURCE[0]}")/bootstrap-base.sh"
}

# add_host_cas DIR: the *.crt files of CLAUDERON_EXTRA_CA_DIR (default: the system's extra
# certificates; empty: none), copied into DIR as host-<name>, so a TLS-inspecting network
# works inside the build and no host certificate ever lands in the repository.
add_host_cas() {
    local dir=${CLAUDERON_EXTRA_CA_DIR-/usr/local/share/ca-certificates} crt
    mkdir -p "$1"
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    while IFS= read -r -d '' crt; do
        cp "$crt" "$1/host-$(basename "$crt")"
    done < <(find "$dir" -type f -name '*.crt' -print0)
}

# inputs_hash [--modes]: sha256 over each context file's path (and mode, with --modes) and
# content, then the base image id (a rebuilt base means a rebuilt image).
inputs_hash() {
    {
        if [ "${1-}" = --modes ]; then
            (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%a %n')
        fi
        (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        printf 'base %s %s\n' "$base" "$(docker image inspect -f '{{.Id}}' "$base")"
    } | sha256sum | cut -d' ' -f1
}

# build_when_changed HASH DOCKER_BUILD_ARG...: nothing when the image's label already holds
# HASH (unless --force); exit 3 under --check when it does not; else build the context with
# the label, BASE and the arguments given (tags, more labels). The image the build replaced,
# once nothing names it, is removed (unless a container still runs it: the engine refuses).
build_when_changed() {
    local hash=$1 current previous started
    shift
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
    docker build --network host --build-arg "BASE=$base" --label "$label=$hash" "$@" "$context"
    if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ] \
            && [ "$(docker image inspect -f '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
        docker image rm "$previous" >/dev/null 2>&1 || true
    fi
    echo "built $image in $((SECONDS - started))s (inputs $hash)"
}
