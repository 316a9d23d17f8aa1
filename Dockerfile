# sprunner in a container: `docker run --rm -v "$PWD:/work" -e SCRAPINGPROS_API_KEY IMAGE apply`.
# The Kubernetes recipes in examples/deploy use it as ghcr.io/scrapingpros/sprunner:0.1.0.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build from a copy of the source, then drop it: only the installed package stays.
COPY . /tmp/sprunner-src
# The postgres extra: the Kubernetes recipe with a shared state database needs it.
RUN pip install --no-cache-dir "/tmp/sprunner-src[postgres]" \
    && rm -rf /tmp/sprunner-src

# The same uid/gid as the Kubernetes recipes' securityContext (runAsUser/fsGroup 10001).
RUN groupadd --system --gid 10001 sprunner \
    && useradd --system --uid 10001 --gid 10001 --no-log-init --create-home sprunner
USER 10001:10001

# Job files and the state directory (.sprunner) live under the working directory: mount it.
WORKDIR /work
ENTRYPOINT ["sprunner"]
CMD ["--help"]
