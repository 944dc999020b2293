#!/usr/bin/env bash
# Run the whole test suite on a real engine. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
uv run --frozen ruff check .
uv run --frozen mypy
exec uv run --frozen pytest "$@"
