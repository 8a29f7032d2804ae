# vision-gateway container image.
#   docker build -t vision-gateway .
#   docker run -p 8080:8080 -e AIMLAPI_API_KEY=... vision-gateway
# The default command serves /app/config.yaml (mount your own over it) on $PORT with
# $GATEWAY_WORKERS worker processes.
ARG BASE_IMAGE=python:3.11-slim

# Build stage: a virtualenv holding the pinned dependencies and the gateway itself.
FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python3 -m venv /opt/venv

WORKDIR /src

# Pinned dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md ./
COPY app/ ./app/
# The installer itself is not needed at runtime: it leaves the venv with the build stage.
RUN pip install --no-cache-dir --no-deps . \
    && pip uninstall --yes setuptools pip

# Runtime stage: the base image, the venv and the default config; no compiler, no pip cache.
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8080 \
    GATEWAY_WORKERS=1 \
    GATEWAY_CONFIG=/app/config.yaml

RUN groupadd --gid 10001 gateway \
    && useradd --uid 10001 --gid gateway --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin gateway

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY config.yaml ./

# Numeric, so that runtimes enforcing runAsNonRoot can tell it is not root.
USER 10001:10001

EXPOSE 8080

# http.client rather than urllib: a proxy set in the environment must not intercept loopback.
# OCI images have no HEALTHCHECK: podman/buildah keep it with --format docker (BUILDAH_FORMAT=docker).
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import http.client, os, sys; c = http.client.HTTPConnection('127.0.0.1', int(os.environ.get('PORT', '8080')), timeout=4); c.request('GET', '/health'); sys.exit(c.getresponse().status != 200)"]

# exec: the server becomes PID 1 and receives SIGTERM directly, so `docker stop` drains it.
# `python -m app` serves with uvloop and httptools.
CMD ["/bin/sh", "-c", "exec python -m app --config \"$GATEWAY_CONFIG\" --host 0.0.0.0 --port \"$PORT\" --workers \"$GATEWAY_WORKERS\""]
