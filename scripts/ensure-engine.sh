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

# A killed engine leaves its pid file behind and dockerd then refuses to
# start; the file is stale when no live dockerd holds that pid.
clear_stale_pid() {
  local pidfile=/var/run/docker.pid pid
  for pidfile in /var/run/docker.pid /run/docker/containerd/containerd.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
      say "removing stale $pidfile"
      as_root rm -f "$pidfile"
    fi
  done
}

start_engine() {
  clear_stale_pid
  say "starting dockerd (log: $LOG)"
  # setsid: the engine must outlive the shell that started it.
  as_root setsid dockerd -H "unix://$SOCK" >>"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    engine_up && return 0
    sleep 0.5
  done
  say "dockerd did not answer within 30 s; last log lines:"
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
