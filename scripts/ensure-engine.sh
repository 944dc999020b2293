#!/usr/bin/env bash
# Make sure a Docker engine answers on the local socket, installing and
# starting one when none does, then build the small image the tests use.
# Safe to run again and again: every step checks before it acts.
set -euo pipefail

SOCK=${BERTH_ENGINE_SOCKET:-/var/run/docker.sock}
TEST_IMAGE=${BERTH_TEST_IMAGE:-berth-test/busybox:latest}
LOG=${BERTH_ENGINE_LOG:-/var/log/berth-dockerd.log}

say() { printf 'ensure-engine: %s\n' "$*" >&2; }

engine_up() {
  docker -H "unix://$SOCK" version --format '{{.Server.Version}}' \
    >/dev/null 2>&1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_engine() {
  say "no dockerd found; installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >/dev/null
  as_root apt-get install -y -q --no-install-recommends \
    docker.io iptables busybox-static >/dev/null
}

# Whether pid is a running (not zombie) process of the named program. A
# killed engine's pid may be a zombie nobody reaped yet, or reused by any
# other process: kill -0 alone would call both alive.
runs_as() {
  local pid=$1 program=$2 state
  [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$program" ] || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
  [ "$state" != Z ]
}

# A killed engine leaves its pid files behind: dockerd then refuses to
# start, or waits for a containerd that is gone. A file is stale unless a
# live process of that program holds its pid.
clear_stale_pid() {
  local pidfile program pid
  for pidfile in /var/run/docker.pid:dockerd \
      /run/docker/containerd/containerd.pid:containerd; do
    program=${pidfile##*:}
    pidfile=${pidfile%:*}
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -z "$pid" ] || ! runs_as "$pid" "$program"; then
      say "removing stale $pidfile"
      as_root rm -f "$pidfile"
    fi
  done
}

# One try: start dockerd and wait for it to answer, or to give up.
try_engine() {
  local dockerd
  clear_stale_pid
  say "starting dockerd (log: $LOG)"
  # setsid: the engine must outlive the shell that started it.
  as_root setsid dockerd -H "unix://$SOCK" >>"$LOG" 2>&1 < /dev/null &
  dockerd=$!
  for _ in $(seq 1 120); do
    engine_up && return 0
    # Exited already (its containerd would not come up, say): no use
    # waiting out the rest.
    kill -0 "$dockerd" 2>/dev/null || break
    sleep 0.5
  done
  as_root kill "$dockerd" 2>/dev/null || true
  return 1
}

# Twice: what a killed engine leaves behind (pid files, a containerd that
# is gone) can fail the first start after it and be cleared for the next.
start_engine() {
  try_engine && return 0
  say "dockerd did not start; trying once more"
  sleep 2
  try_engine && return 0
  say "dockerd did not answer; last log lines:"
  tail -n 20 "$LOG" >&2 || true
  return 1
}

build_test_image() {
  if docker -H "unix://$SOCK" image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  command -v busybox >/dev/null 2>&1 && busybox --help 2>&1 | grep -q static \
    || as_root apt-get install -y -q busybox-static >/dev/null
  local dir
  dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
  cp "$(command -v busybox)" "$dir/bin/busybox"
  for tool in sh sleep echo cat ls true false env kill head dd yes nc \
      wget httpd id hostname ps mkdir rm touch tail; do
    ln -s busybox "$dir/bin/$tool"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
  echo 'root:x:0:' >"$dir/etc/group"
  say "importing $TEST_IMAGE from the local static busybox"
  tar -C "$dir" -c . | docker -H "unix://$SOCK" import \
    -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$TEST_IMAGE" >/dev/null
  rm -rf "$dir"
}

main() {
  if [ "$SOCK" != /var/run/docker.sock ]; then
    # A private engine a test started: it is up already; only the image.
    build_test_image
    return 0
  fi
  if ! engine_up; then
    command -v dockerd >/dev/null 2>&1 || install_engine
    start_engine
  fi
  build_test_image
  say "engine $(docker -H "unix://$SOCK" version --format '{{.Server.Version}}') ready; image $TEST_IMAGE"
}

main "$@"
