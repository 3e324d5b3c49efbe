# The gulou image: collector (gulou ingest), rules engine (gulou rules run) and simulator.
# The base image is pinned by tag and digest (docs/deploy.md says where the digest comes from).
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3 AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3
RUN useradd --system --uid 10001 --home-dir /var/lib/gulou --create-home gulou
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER gulou
WORKDIR /var/lib/gulou
# No GULOU_SPOOL_DIR: each collector process keeps its own spool, spool-<client id>, next to the store.
# The registry is not baked in: compose mounts the operator's file and sets GULOU_REGISTRY.
ENV PYTHONUNBUFFERED=1 \
    GULOU_STORE=/var/lib/gulou/gulou.db
VOLUME ["/var/lib/gulou"]
ENTRYPOINT ["gulou"]
CMD ["--help"]
