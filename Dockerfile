# sitewatch services (ingest, assets API, gateway) in one image; the command picks the component.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir '.[postgres]'
USER nobody
ENTRYPOINT ["sitewatch"]
CMD ["--help"]
