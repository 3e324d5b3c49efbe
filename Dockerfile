# The gulou image: collector (gulou ingest), rules engine (gulou rules run) and simulator.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/gulou --create-home gulou
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER gulou
WORKDIR /var/lib/gulou
ENV PYTHONUNBUFFERED=1 \
    GULOU_STORE=/var/lib/gulou/gulou.db \
    GULOU_SPOOL_DIR=/var/lib/gulou/spool
VOLUME ["/var/lib/gulou"]
ENTRYPOINT ["gulou"]
CMD ["--help"]
