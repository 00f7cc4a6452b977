# phone-enrich in a container: `docker run --rm -v "$PWD:/data" -w /data phone-enrich run config.toml`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY configs ./configs
COPY sample_data ./sample_data
RUN pip install . \
    && useradd --create-home --uid 10001 enrich \
    && chown -R enrich:enrich /app

USER enrich
ENTRYPOINT ["phone-enrich"]
CMD ["--help"]
