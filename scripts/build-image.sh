#!/usr/bin/env bash
# Build berth's container image without network access during the build.
# Usage: scripts/build-image.sh [TAG] [docker build options...]
# e.g.   scripts/build-image.sh berth:dev --build-arg PYTHON_IMAGE=my/python:3.11
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-berth:latest}
shift || true

bash scripts/wheelhouse.sh
exec docker build --network none --tag "$tag" "$@" .
