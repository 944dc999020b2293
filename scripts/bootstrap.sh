#!/usr/bin/env bash
# Prepare a fresh machine: uv, the locked environment, and a Docker engine
# with the test image. Sourced-free: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet uv
fi

# Compiled once here: where PYTHONDONTWRITEBYTECODE is set (this machine
# kind sets it) every start would otherwise compile every module anew,
# which doubles the time berth takes to start.
uv sync --frozen --quiet --compile-bytecode
uv run --frozen python -m compileall -q app migrations >/dev/null
bash scripts/ensure-engine.sh

# Test services the suite starts by itself: a throwaway PostgreSQL (from
# Debian's binaries, run as the postgres user in a temporary directory)
# and a local image registry (Debian's docker-registry). Install them when
# missing, without letting the packages start anything of their own.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_without_services() {
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    # 101: "action forbidden"; the packages' services stay stopped.
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >/dev/null
  as_root apt-get install -y -q --no-install-recommends "$@" >/dev/null
  if [ -n "$made_policy" ]; then as_root rm -f "$policy"; fi
}

missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  # No "main" cluster on port 5432: the tests make their own, and a system
  # one would only take the port and run for nothing.
  as_root mkdir -p /etc/postgresql-common
  if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo 'create_main_cluster = false' \
      | as_root tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  missing+=(postgresql)
fi
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  install_without_services "${missing[@]}"
fi
