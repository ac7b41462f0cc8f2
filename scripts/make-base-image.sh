#!/usr/bin/env bash
# A small Debian base image with Python, made locally from Debian's packages (no image can be
# pulled on these machines). Used by the container test as the Dockerfile's BASE; made once and
# kept by the Docker Engine. Usage: scripts/make-base-image.sh [TAG]   (root on Debian)
set -euo pipefail
tag="${1:-reconciler-base:bookworm}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
root="$(mktemp -d /tmp/reconciler-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "made $tag"
