#!/usr/bin/env bash
# `make container-test`: build the image, start it on a free localhost port with the trained models
# mounted read-only, check /health, /predict, a bad request (4xx), a non-root user and a graceful
# stop on SIGTERM; record image size, build and test seconds in results/container.json.
# Settings from the environment (the Makefile passes them): CONTAINER, CONTAINER_FLAGS, IMAGE, BASE,
# NO_CACHE (see tools/container_build.sh) and MODELS, the folder holding multitask/ and retrieval/best
# (`make train`, `make retrieval`). Not part of `make test`: it takes minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
CONTAINER=${CONTAINER:-podman}
read -r -a cflags <<<"${CONTAINER_FLAGS:-}"
IMAGE=${IMAGE:-sentence-mtl}
MODELS=${MODELS:-$PWD/models}
START_TIMEOUT=${START_TIMEOUT:-180}  # seconds for the models to load
STOP_TIMEOUT=10                       # `stop` sends SIGTERM, then SIGKILL after this many seconds
t0=$(date +%s)
failures=0
cid=""
stage=""
logs_pid=""
# podman schedules HEALTHCHECKs with systemd timers; on a host without systemd it logs an error at
# each start and stop (and runs the check only on `podman healthcheck run`, as below): left out
ctr() { "$CONTAINER" "${cflags[@]}" "$@" 2> >(grep -v "unable to get systemd connection" >&2); }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
cleanup() {
  [ -n "$logs_pid" ] && kill "$logs_pid" 2>/dev/null
  [ -n "$cid" ] && ctr rm -f "$cid" >/dev/null 2>&1
  [ -n "$stage" ] && rm -rf "$stage"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the models: both folders the service loads must be there
for d in multitask retrieval/best; do
  if [ ! -e "$MODELS/$d" ]; then
    echo "FAIL: no $MODELS/$d: run \`make train\` and \`make retrieval\` first, or set MODELS=DIR"; exit 1
  fi
done
MODELS=$(cd "$MODELS" && pwd)
# The container's user (uid 10001) must be able to read them. Files that only their owner can read
# (safetensors' save_file writes 0600) are staged into a world-readable temporary copy instead of
# changing the originals.
if [ -n "$(find -L "$MODELS/multitask" "$MODELS/retrieval/best" \( -type f ! -perm -o=r \) -o \( -type d ! -perm -o=rx \) | head -1)" ]; then
  stage=$(mktemp -d "${TMPDIR:-/tmp}/sentence-mtl-models.XXXXXX")
  mkdir -p "$stage/retrieval"
  cp -r "$MODELS/multitask" "$stage/multitask"
  cp -rL "$MODELS/retrieval/best" "$stage/retrieval/best"
  chmod -R a+rX "$stage"
  echo "NOTE: files under $MODELS are not world-readable (uid 10001 in the container could not read them);"
  echo "      using a readable copy in $stage (\`chmod -R a+rX models\` avoids this)"
  mount_dir=$stage
else
  mount_dir=$MODELS
fi

# --- build
build_out=$(mktemp)
{ tools/container_build.sh 2>&1; echo "build_rc=$?"; } | tee "$build_out"
grep -qx "build_rc=0" "$build_out" || { echo "FAIL: build"; exit 1; }
build_s=$(sed -n 's/^build_s=//p' "$build_out" | tail -1); rm -f "$build_out"
ctr image exists "$IMAGE" 2>/dev/null || ctr image inspect "$IMAGE" >/dev/null || { echo "FAIL: no image $IMAGE"; exit 1; }
size=$(ctr image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(( (size + 500000) / 1000000 ))
pass "build: $IMAGE, ${size_mb} MB, ${build_s} s"

# --- start on a free localhost port
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t_start=$(date +%s)
cid=$(ctr run --rm -d -p "127.0.0.1:$port:8000" -v "$mount_dir:/app/models:ro" "$IMAGE") \
  || { echo "FAIL: could not start the container"; exit 1; }
logfile=$(mktemp)
ctr logs -f "$cid" >"$logfile" 2>&1 &
logs_pid=$!
url=http://127.0.0.1:$port
healthy=""
for _ in $(seq "$START_TIMEOUT"); do
  if curl -fsS -o /dev/null "$url/health" 2>/dev/null; then healthy=1; break; fi
  ctr inspect "$cid" >/dev/null 2>&1 || break  # it exited
  sleep 1
done
if [ -n "$healthy" ]; then
  pass "GET /health answers 200 after $(( $(date +%s) - t_start )) s: $(curl -fsS "$url/health" | head -c 160)..."
else
  fail "GET /health: no answer within ${START_TIMEOUT} s; the container's log:"; cat "$logfile"; exit 1
fi

# --- the built-in HEALTHCHECK (podman runs it on demand; docker has no such command)
if [ "$(basename "$CONTAINER")" = podman ]; then
  if ctr healthcheck run "$cid" >/dev/null 2>&1; then pass "HEALTHCHECK (python urllib on /health) reports healthy"
  else fail "HEALTHCHECK does not report healthy (built without --format docker?)"; fi
fi

# --- /predict and a bad request
body=$(curl -sS -w '\n%{http_code}' "$url/predict" -H 'Content-Type: application/json' \
  -d '{"texts": ["Stocks fell sharply after the central bank raised rates.", "What a wonderful match!"]}')
code=${body##*$'\n'}; body=${body%$'\n'*}
if [ "$code" = 200 ] && python3 -c 'import json,sys; r = json.loads(sys.argv[1]); assert r' "$body" 2>/dev/null; then
  pass "POST /predict 200: $(echo "$body" | head -c 200)..."
else
  fail "POST /predict: HTTP $code $body"
fi
code=$(curl -sS -o /dev/null -w '%{http_code}' "$url/predict" -H 'Content-Type: application/json' -d '{"texts": "not a list"}')
if [[ "$code" =~ ^4[0-9][0-9]$ ]]; then pass "POST /predict with a string for the list: HTTP $code"
else fail "POST /predict with a string for the list: HTTP $code, expected 4xx"; fi

# --- not root; the server is PID 1 (gets SIGTERM itself)
uid=$(ctr exec "$cid" id -u)
if [ -n "$uid" ] && [ "$uid" != 0 ]; then pass "runs as uid $uid (not root)"; else fail "runs as uid '${uid}'"; fi
pid1=$(ctr exec "$cid" cat /proc/1/cmdline | tr '\0' ' ')
case "$pid1" in *"sentence-mtl serve"*) pass "PID 1 is the server: $pid1";; *) fail "PID 1 is '$pid1'";; esac

# --- graceful stop: SIGTERM, uvicorn shuts down well before the SIGKILL deadline
t_stop=$(date +%s.%N)
ctr stop -t "$STOP_TIMEOUT" "$cid" >/dev/null
stop_s=$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t_stop")
sleep 1; kill "$logs_pid" 2>/dev/null; logs_pid=""
if python3 -c "import sys; sys.exit(not float(sys.argv[1]) < $STOP_TIMEOUT - 1)" "$stop_s" \
   && grep -q "Finished server process" "$logfile"; then
  pass "stopped on SIGTERM in $stop_s s (uvicorn: \"$(grep -m1 -o 'Shutting down' "$logfile")\" ... \"Finished server process\")"
else
  fail "stop took $stop_s s (SIGKILL after $STOP_TIMEOUT s) or no 'Finished server process' in the log:"; tail -5 "$logfile"
fi
if grep -q "Uvicorn running on http://0.0.0.0:8000" "$logfile"; then pass "listens on 0.0.0.0:8000 inside the container; logs on stdout"
else fail "no 'Uvicorn running on http://0.0.0.0:8000' in the log"; fi
rm -f "$logfile"
cid=""

test_s=$(( $(date +%s) - t0 ))
if [ "$failures" = 0 ]; then
  python3 - "$size_mb" "$build_s" "$test_s" "${BASE:-docker.io/library/python:3.11-slim}" "${NO_CACHE:-0}" "$CONTAINER" <<'PY'
import datetime, json, os, pathlib, sys
# one record per kind of run: "cold" (NO_CACHE=1: every layer built) and "cached"; each run replaces its own
size_mb, build_s, test_s, base, no_cache, container = sys.argv[1:]
path = pathlib.Path("results/container.json")
records = json.loads(path.read_text()) if path.is_file() else {}
records["cold" if no_cache == "1" else "cached"] = {
    "image_size_mb": int(size_mb), "build_s": int(build_s), "container_test_s": int(test_s),
    "base": base, "engine": container.rsplit("/", 1)[-1], "date": datetime.date.today().isoformat(),
    "cpus": len(os.sched_getaffinity(0))}
records["note"] = "container_test_s: the whole `make container-test`, its build (build_s) included; MB = 10^6 bytes"
path.write_text(json.dumps(dict(sorted(records.items())), indent=1) + "\n")
PY
  echo "PASS: all checks, ${test_s} s in all (build ${build_s} s); results/container.json written"
else
  echo "FAIL: $failures check(s) failed, ${test_s} s"
  exit 1
fi
