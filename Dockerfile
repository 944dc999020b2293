# berth's container image: two stages, no compiler, no network.
#
#   bash scripts/build-image.sh [TAG] [docker build options]
#
# builds it. That script first runs scripts/wheelhouse.sh, which prepares on
# the host what this file installs: build/wheels (every runtime dependency
# as a wheel, pinned and hashed from uv.lock) and build/dist (berth's own
# wheel). The build itself runs with `--network none`.
#
# PYTHON_IMAGE is any image with CPython 3.11 as /usr/local/bin/python3:
# the official slim image by default; the tests pass one made from the
# host's interpreter, since no registry is reachable there.
#
# The engine's socket is root:docker, mode 0660, on a host, and the docker
# group's ID differs from host to host, so the image bakes none in. Give the
# container that group when it runs:
#   docker run --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock ...
# (compose: group_add; Kubernetes: securityContext.supplementalGroups).
# berth then runs as an unprivileged user that can reach the socket but
# owns nothing else on the host.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INDEX=1

RUN ["python3", "-m", "venv", "/opt/berth"]

# Dependencies first: this layer is rebuilt only when uv.lock changes.
COPY build/wheels/ /wheels/
RUN ["/opt/berth/bin/pip", "install", "--find-links", "/wheels", \
     "--only-binary", ":all:", "--require-hashes", \
     "--requirement", "/wheels/requirements.txt"]

COPY build/dist/ /dist/
RUN ["/opt/berth/bin/pip", "install", "--find-links", "/dist", "--no-deps", \
     "berth"]

# The installer has done its work; the image does not need it.
RUN ["/opt/berth/bin/pip", "uninstall", "--yes", "pip", "setuptools"]
RUN ["python3", "-c", "import os; os.makedirs('/var/lib/berth', mode=0o700)"]


FROM ${PYTHON_IMAGE}

ARG BERTH_UID=10001

LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="A per-host container agent with a REST API"

COPY --from=build /opt/berth /opt/berth
COPY --from=build --chown=${BERTH_UID}:${BERTH_UID} /var/lib/berth /var/lib/berth

ENV PATH=/opt/berth/bin:/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/berth \
    BERTH_STATE_DIR=/var/lib/berth \
    BERTH_LOG_FORMAT=json \
    BERTH_HEALTH_URL=http://127.0.0.1:8000/healthz

# A number, not a name: the base image need not have a user for it.
USER ${BERTH_UID}:${BERTH_UID}
WORKDIR /var/lib/berth
VOLUME ["/var/lib/berth"]
EXPOSE 8000

# Liveness only (/healthz): an engine that is down makes berth unready,
# not unhealthy; restarting berth would not bring the engine back.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['BERTH_HEALTH_URL'], timeout=4)"]

# Bound beyond loopback, berth refuses to start without an API token:
# set BERTH_API_TOKEN_FILE (or BERTH_API_TOKEN).
ENTRYPOINT ["berth"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
