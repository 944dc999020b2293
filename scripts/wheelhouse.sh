#!/usr/bin/env bash
# Prepare what the Dockerfile installs, so that `docker build` needs no
# network:
#   build/wheels  every runtime dependency as a wheel, pinned and hashed
#                 from uv.lock (with requirements.txt listing them)
#   build/dist    berth's own wheel
# The wheels are for CPython $PYTHON_VERSION (default 3.11) on Linux
# $PLATFORM_ARCH (default x86_64), whatever the host runs. Dependencies are
# fetched again only when the lock file's export changes.
set -euo pipefail
cd "$(dirname "$0")/.."

python_version=${PYTHON_VERSION:-3.11}
arch=${PLATFORM_ARCH:-x86_64}
wheels=build/wheels
dist=build/dist
mkdir -p "$wheels" "$dist"

wanted=$(mktemp)
trap 'rm -f "$wanted"' EXIT
uv export --frozen --no-dev --no-emit-project --format requirements-txt \
    --no-header --quiet --output-file "$wanted"
printf '# python %s, %s\n' "$python_version" "$arch" >>"$wanted"

if ! cmp -s "$wanted" "$wheels/requirements.txt"; then
    rm -f "$wheels"/*.whl "$wheels/requirements.txt"
    abi="cp${python_version/./}"
    uvx pip download --quiet --progress-bar off \
        --dest "$wheels" --no-deps --require-hashes \
        --only-binary=:all: --implementation cp \
        --python-version "$python_version" --abi "$abi" --abi abi3 --abi none \
        --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" \
        --platform "manylinux2014_$arch" --platform "manylinux1_$arch" \
        --platform "manylinux_2_5_$arch" \
        --requirement "$wanted"
    cp "$wanted" "$wheels/requirements.txt"
fi

rm -f "$dist"/*.whl
uv build --wheel --quiet --out-dir "$dist"
