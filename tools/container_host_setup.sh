#!/usr/bin/env bash
# Host setup for `make container` / `make container-test` on a Debian 12 machine without an image
# registry (CI with CI_CONTAINER=1 runs it; run as root). Idempotent. It
#  1. installs podman, runc and debootstrap (Debian packages);
#  2. writes /etc/containers/containers.conf: runc as the runtime, the cgroupfs cgroup manager and
#     no default ulimits (crun fails here on rlimits and hybrid cgroups);
#  3. builds the local base image $BASE (default localhost/bookworm-python): a Debian bookworm
#     minbase rootfs with python3 (3.11) and python3-venv, imported with `podman import`.
# Machines that can pull from a registry need none of this: `make container` uses python:3.11-slim.
set -euo pipefail
BASE=${BASE:-localhost/bookworm-python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

need=()
for cmd in podman runc debootstrap; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

conf=/etc/containers/containers.conf
if ! grep -qs 'sentence-mtl' "$conf"; then
  echo "==> writing $conf"
  mkdir -p /etc/containers
  [ -f "$conf" ] && cp "$conf" "$conf.bak"
  cat > "$conf" <<'CONF'
# written by sentence-mtl tools/container_host_setup.sh: crun fails on this host (rlimits, hybrid cgroups)
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
fi

if podman image exists "$BASE"; then
  echo "==> base image $BASE exists"
else
  echo "==> building base image $BASE from a debootstrap bookworm rootfs (a few minutes)"
  rootfs=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$MIRROR" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import -q --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  echo "==> $BASE: $(podman image inspect --format '{{.Size}}' "$BASE" | awk '{printf "%.0f MB", $1/1e6}')"
fi
