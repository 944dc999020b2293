#!/usr/bin/env bash
# Prepare a fresh machine: uv, the locked environment, and a Docker engine
# with the test image. Sourced-free: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet uv
fi

uv sync --frozen --quiet
bash scripts/ensure-engine.sh
