#!/usr/bin/env bash
# Build the service image from Containerfile (`make container`). Settings from the environment:
#   CONTAINER        podman (default) or docker
#   CONTAINER_FLAGS  global flags for it (e.g. "--runtime runc")
#   IMAGE            the tag (default sentence-mtl)
#   BASE             the base image (default: the Containerfile's, python:3.11-slim from a registry;
#                    registry-less: localhost/bookworm-python from tools/container_host_setup.sh)
#   NO_CACHE=1       a cold build (every layer rebuilt)
# Where the host has pip's local wheels and indexes (/opt/wheels, /opt/pypi, /opt/pypi-more), podman
# mounts them into the build and pip uses them as the host's pip does (find-links first: torch's CPU
# wheel, 2.13.0+cpu, outranks any 2.13.0 on an index), and PIP_CERT if set; PyPI stays reachable.
# Prints the build's seconds on its last line ("build_s=N").
set -euo pipefail
cd "$(dirname "$0")/.."
CONTAINER=${CONTAINER:-podman}
read -r -a cflags <<<"${CONTAINER_FLAGS:-}"
IMAGE=${IMAGE:-sentence-mtl}
args=(build -f Containerfile -t "$IMAGE")
[ -n "${BASE:-}" ] && args+=(--build-arg "BASE=$BASE")
[ "${NO_CACHE:-0}" = 1 ] && args+=(--no-cache)
if [ "$(basename "$CONTAINER")" = podman ]; then
  args+=(--format docker)  # OCI format drops HEALTHCHECK
  if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
    indexes=()
    for d in /opt/wheels /opt/pypi /opt/pypi-more; do [ -d "$d" ] && args+=(-v "$d:$d:ro"); done
    for d in /opt/pypi /opt/pypi-more; do [ -d "$d/simple" ] && indexes+=("file://$d/simple"); done
    args+=(--build-arg "TORCH_PIP_ARGS=" --build-arg "PIP_FIND_LINKS=/opt/wheels" --build-arg "PIP_EXTRA_INDEX_URL=${indexes[*]}")
  fi
  # the host pip's CA bundle (PIP_CERT), for a TLS-inspecting proxy in front of PyPI
  if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    args+=(-v "$PIP_CERT:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
  fi
fi
start=$(date +%s)
# (pip warns for every project a local index lacks: noise, left out)
nice -n 10 "$CONTAINER" "${cflags[@]}" "${args[@]}" . 2>&1 | grep --line-buffered -v "is ignored: it is neither a file nor a directory"
build_s=$(( $(date +%s) - start ))
echo "build_s=$build_s"
