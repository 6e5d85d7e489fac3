# Shine: `shine serve` in a slim Python 3.11 image, as a non-root user, with a health check on /healthz.
#   docker build -t shine .                              # the server (web browsing off)
#   docker build -t shine --build-arg WITH_FIRECRAWL=1 . # plus Node and firecrawl-mcp for web browsing
# `compose.yaml` runs two of these behind Caddy on PostgreSQL; see the README's "Deploy" section.
FROM python:3.11-slim

ARG WITH_FIRECRAWL=0
ARG FIRECRAWL_MCP_VERSION=3.26.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Node only for the local Firecrawl MCP server (FIRECRAWL_API_KEY); a remote one (FIRECRAWL_MCP_URL) needs none.
RUN if [ "$WITH_FIRECRAWL" = "1" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends nodejs npm \
        && npm install --global "firecrawl-mcp@${FIRECRAWL_MCP_VERSION}" \
        && npm cache clean --force \
        && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shine_mcp ./shine_mcp
COPY agent ./agent
COPY web_shell ./web_shell
COPY shine_cli ./shine_cli
# The ONNX models, the knowledge files and the demo catalog are package data: installed with the package.
RUN pip install . && rm -rf /app/build

RUN useradd --create-home --uid 10001 --user-group shine \
    && mkdir -p /data \
    && chown shine:shine /data
USER shine

ENV SHINE_HOST=0.0.0.0 \
    SHINE_PORT=8000 \
    SHINE_DATA_DIR=/data \
    SHINE_FIRECRAWL_COMMAND='["firecrawl-mcp"]'
VOLUME ["/data"]
EXPOSE 8000

# Loopback Host header: always among the hosts Shine answers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["shine", "serve"]
