# sprunner in a container. Run it as the owner of the folder you mount, so that the state
# and the reports it writes there are yours:
#
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -e SCRAPINGPROS_API_KEY \
#     ghcr.io/scrapingpros/sprunner:0.1.0 apply --report report.json --junit junit.xml
#
# - Any uid works: `docker run --user`, OpenShift's arbitrary uids (always in group 0) and
#   Kubernetes' runAsUser. Nothing needs a passwd entry; the image's own writable folders
#   (/work, HOME) belong to group 0 with the owner's rights, as OpenShift asks. Without
#   --user it runs as uid 10001, which must then be able to write the mounted folder.
# - Paths, all under the working directory /work (mount the job-file repository there):
#   job files `jobfiles/` (the default PATH), the state `.sprunner/` (--state-dir,
#   SPRUNNER_STATE_DIR), reports where --report/--junit say, results where `results.to`
#   says. Nothing is written anywhere else but /tmp.
# - The key: SCRAPINGPROS_API_KEY, or a file named by SCRAPINGPROS_API_KEY_FILE (Docker and
#   Kubernetes secrets: SCRAPINGPROS_API_KEY_FILE=/run/secrets/scrapingpros-api-key).
# - The Kubernetes recipes in deploy/ use it as ghcr.io/scrapingpros/sprunner:0.1.0.
#
# BASE: any image with python3 (3.10 or later) and its venv module. The tests build this
# file with buildah on a Debian base they make themselves (tests/container.py).
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
# A virtual environment works alike on python:*-slim (Python in /usr/local) and on Debian's
# python3 (whose pip refuses system-wide installs, PEP 668); only it goes to the image.
RUN python3 -m venv /opt/sprunner
COPY . /tmp/sprunner-src
# The postgres extra: the Kubernetes recipe with a shared state database needs it. pip's
# cache lives in a build cache, never in a layer (and this stage is thrown away anyway).
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/sprunner/bin/pip install --disable-pip-version-check "/tmp/sprunner-src[postgres]"

FROM ${BASE}
LABEL org.opencontainers.image.title="sprunner" \
      org.opencontainers.image.source="https://github.com/scrapingpros/sprunner" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/sprunner/bin:$PATH \
    HOME=/home/sprunner \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/sprunner /opt/sprunner
# uid 10001 as in the Kubernetes recipes (runAsUser); group 0 and g=u for arbitrary uids.
RUN useradd --uid 10001 --gid 0 --home-dir /home/sprunner --no-create-home --no-log-init \
        --shell /usr/sbin/nologin sprunner \
    && mkdir -p /work /home/sprunner \
    && chown 10001:0 /work /home/sprunner \
    && chmod 0775 /work /home/sprunner
USER 10001:0
WORKDIR /work
ENTRYPOINT ["sprunner"]
CMD ["--help"]
