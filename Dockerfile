# The reconcile tool as a container image: for scheduled drift jobs and CI runners.
#   docker build -t reconciler .                       # normal build: BASE defaults to python:3.12-slim
#   docker run --rm -v "$PWD:/work" -e AWS_PROFILE -v ~/.aws:/home/reconciler/.aws:ro reconciler drift manifests/maestro.yaml
# No credential is baked in: pass them at run time (environment, a mounted ~/.aws, or the runner's role).
# BASE can be any Debian-like image with python3 (3.11+) and its venv module; PIP_ARGS lets an offline
# build install from a wheelhouse inside the context (e.g. "--no-index --find-links /src/wheelhouse").
ARG BASE=python:3.12-slim
FROM ${BASE}
ARG PIP_ARGS=""
COPY . /src
RUN python3 -m venv /opt/reconciler \
 && /opt/reconciler/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_ARGS} /src \
 && rm -rf /src \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin reconciler
ENV PATH=/opt/reconciler/bin:$PATH PYTHONDONTWRITEBYTECODE=1
USER reconciler
WORKDIR /work
ENTRYPOINT ["reconcile"]
CMD ["--help"]
