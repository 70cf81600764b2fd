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
# Neighbours: ../ensure-docker.sh, ../bootstrap-base.sh, ../build-lib.sh, Dockerfile.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=build
# shellcheck source=../build-lib.sh
. "$here/../build-lib.sh"
image="${CLAUDERON_AGENT_IMAGE:-clauderon-agent:latest}"
base="${CLAUDERON_AGENT_BASE:-debian:bookworm-slim}"
label=clauderon.inputs

parse_args 21 "$@"
need_engine_and_base

context="$(mktemp -d "${TMPDIR:-/tmp}/clauderon-agent-context.XXXXXX")"
trap 'rm -rf "$context"' EXIT

cp "$here/Dockerfile" "$context/Dockerfile"
mkdir -p "$context/extra-ca"
find "$here/extra-ca" -maxdepth 1 -type f -name '*.crt' -exec cp {} "$context/extra-ca/" \;
add_host_cas "$context/extra-ca"

build_when_changed "$(inputs_hash)" --tag "$image"
