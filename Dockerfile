# motcua application image: one image for every app service in docker-compose.yml
# (migrate, web, worker, beat); the command chooses the role. Configured only by MOTCUA_* variables.

# Front-end libraries (bpmn-js) from npm, pinned by package-lock.json.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim

# PYTHONPATH: the procedure library (processes/) is not package data; engine.catalogue finds it
# next to the engine/ folder. Importing the application from /app keeps engine/ and processes/
# side by side; `pip install .` below provides the dependencies and the `motcua` command.
ENV PYTHONDONTWRITEBYTECODE=1 \
    MOTCUA_NODE_MODULES=/app/node_modules \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Dependencies and the `motcua` console script: runtime dependencies only, no [dev] extra.
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY backoffice ./backoffice
COPY connectors ./connectors
COPY scripts ./scripts
COPY processes ./processes
COPY --from=assets /assets/node_modules ./node_modules
RUN pip install . \
    && rm -rf build ./*.egg-info \
    && useradd --system --create-home --uid 10001 motcua \
    && mkdir -p /app/instance && chown motcua /app/instance

# Not root: nothing here needs it (and Celery warns when its worker runs as root). The home
# directory is writable for what the servers keep there (e.g. gunicorn's control socket).
USER motcua

EXPOSE 8000

# docker-compose.yml sets the command of each service; this default is the web process.
CMD ["gunicorn", "--workers=2", "--bind=0.0.0.0:8000", "--access-logfile=-", "backoffice.app:app_factory()"]
