#!/usr/bin/env bash
# Builds the `shoal:local` image from the repo's Dockerfile without pulling anything: the base
# image `shoal-base:local` is imported from a root filesystem holding only the C libraries the
# binary links (plus /tmp and a passwd entry), made from this machine's own files.
#
# Usage: scripts/docker-build.sh [PATH_TO_SHOAL_BINARY]
# Default binary: $CARGO_TARGET_DIR/release/shoal (or target/release/shoal), built if missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:-${CARGO_TARGET_DIR:-$root/target}/release/shoal}"
if [ ! -x "$binary" ]; then
  (cd "$root" && cargo build --release --bin shoal >&2)
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The base: the dynamic loader and every library `ldd` lists, at the same paths.
rootfs="$work/rootfs"
mkdir -p "$rootfs/tmp" "$rootfs/etc" "$rootfs/data"
chmod 1777 "$rootfs/tmp"
echo 'root:x:0:0:root:/root:/nonexistent' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
echo 'hosts: files dns' > "$rootfs/etc/nsswitch.conf"
for lib in $(ldd "$binary" | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
# Name resolution of service names (coordinator1, ...) goes through glibc's NSS modules,
# which are loaded at run time and so are not in ldd's list.
for lib in /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libnss_files.so.2 \
           /lib/x86_64-linux-gnu/libresolv.so.2; do
  if [ -e "$lib" ]; then
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  fi
done
tar -C "$rootfs" -cf "$work/base.tar" .
docker import "$work/base.tar" shoal-base:local >/dev/null

# The image, from the repo's Dockerfile, with a context of just the binary.
context="$work/context"
mkdir -p "$context"
cp "$binary" "$context/shoal"
cp "$root/Dockerfile" "$context/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t shoal:local "$context" >/dev/null
echo "shoal:local"
