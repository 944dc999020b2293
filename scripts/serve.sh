#!/usr/bin/env bash
# Serve berth on the embedded default: SQLite under its state directory,
# the local engine. Extra arguments go to `berth serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec uv run --frozen berth serve "$@"
