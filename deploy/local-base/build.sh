#!/usr/bin/env bash
# Base images made from Debian's own packages, for a Docker host that reaches Debian's mirror but
# no image registry (CI here, an air-gapped site with a Debian mirror):
#
#   rldojo-local/debian:bookworm        debootstrap --variant=minbase, imported as an image
#   rldojo-local/python:3.11-bookworm   + Debian's Python 3.11 (the Dockerfile's BASE_IMAGE)
#   rldojo-local/postgres:15-bookworm   + Debian's PostgreSQL 15 (docker-compose's POSTGRES_IMAGE)
#
# Needs root (debootstrap), debootstrap, and a Docker engine with BuildKit. The mirror is the one
# apt uses on this host, or DEBIAN_MIRROR. The Debian image is made once; delete it to remake it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
docker="${DOCKER:-docker}"
prefix="${RLDOJO_LOCAL_IMAGES:-rldojo-local}"

mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    apt-get indextargets --format '$(REPO_URI)' 'Codename: bookworm' 'Identifier: Packages' \
        | head -n 1
}

if ! "$docker" image inspect "$prefix/debian:bookworm" >/dev/null 2>&1; then
    root="$(mktemp -d /tmp/rldojo-debootstrap-XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    source="$(mirror)"
    [ -n "$source" ] || { echo "no bookworm mirror in apt's sources; set DEBIAN_MIRROR" >&2; exit 1; }
    echo "debootstrap bookworm from $source"
    debootstrap --variant=minbase bookworm "$root" "$source" >"$root.log" 2>&1 \
        || { tail -n 20 "$root.log" >&2; exit 1; }
    rm -f "$root.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | "$docker" import - "$prefix/debian:bookworm"
fi

export DOCKER_BUILDKIT=1
for image in python:3.11-bookworm postgres:15-bookworm; do
    "$docker" build --network host --quiet \
        --build-arg "DEBIAN_IMAGE=$prefix/debian:bookworm" \
        -f "$here/${image%%:*}.Dockerfile" -t "$prefix/$image" "$here"
done
