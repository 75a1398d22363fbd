# syntax=docker/dockerfile:1
# Every image of the pipeline, one target per service, built from the repository root:
#   docker build --target evaluator -t mlpipeline/evaluator .
# Targets: mlflow, trainer, evaluator, explainer, dashboard, predictor. `builder` installs
# requirements.txt once and `runtime` holds that virtualenv, so the app targets share one
# virtualenv layer and differ only in the code they copy, their port, health check and command.
# TORCH_INDEX_URL (build arg, default empty = the torch pinned in requirements.txt, a CUDA build on
# Linux x86_64): set it to PyTorch's CPU-only wheel index (the URL on PyTorch's "Get started"
# page) for images several GB smaller that run on CPU only.

# --- base and the MLflow server -------------------------------------------------------------------
# First in the file: the classic builder builds every stage above the target, and `--target mlflow`
# needs none of the app requirements.

# The MLflow server's own small virtualenv: mlflow at the version requirements.txt pins, and the
# drivers for the production setting (PostgreSQL backend store, S3 artifact store).
FROM python:3.11-slim AS mlflow-builder
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^mlflow==' /tmp/requirements.txt > /tmp/mlflow.txt \
    && pip install --no-cache-dir -r /tmp/mlflow.txt -c /tmp/requirements.txt \
        psycopg2-binary==2.9.13 boto3==1.44.8

# The user (uid/gid 10001), the environment and the writable folders of every image.
FROM python:3.11-slim AS base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app \
    MPLCONFIGDIR=/tmp/matplotlib \
    DATA_DIR=/data \
    ARTIFACTS_DIR=/artifacts \
    STORE_DIR=/store \
    CHECKPOINT_DIR=/artifacts/checkpoints \
    PYTHONPATH=/app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /app /data /artifacts /store /mlflow/artifacts \
    && chown app:app /data /artifacts /store /mlflow /mlflow/artifacts

# Kept light: the MLflow server only.
FROM base AS mlflow
COPY --from=mlflow-builder /opt/venv /opt/venv
WORKDIR /mlflow
USER 10001:10001
ENV MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--backend-store-uri", "sqlite:////mlflow/mlflow.db", "--artifacts-destination", "/mlflow/artifacts", "--serve-artifacts", "--allowed-hosts", "localhost,localhost:5000,127.0.0.1,127.0.0.1:5000,mlflow,mlflow:5000"]

# --- the app targets: one virtualenv, installed once -------------------------------------------

# The requirements, installed once for every app target.
FROM python:3.11-slim AS builder
ARG TORCH_INDEX_URL=""
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        grep -E '^(torch|torchvision)==' /tmp/requirements.txt > /tmp/torch.txt \
        && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" -r /tmp/torch.txt; \
    fi \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# base + the shared virtualenv: what every app target starts from, in /app (the code, read-only).
# GIT_COMMIT (build arg, `GIT_COMMIT=$(git describe --always --dirty --abbrev=40 --exclude='*')
# docker compose build`; "-dirty" after it when tracked files had changes): the commit the
# image is built from; .git stays out of the build context, so the trainer records this one
# (PIPELINE_GIT_COMMIT) as its runs' code, and the label org.opencontainers.image.revision holds
# it too ("-dirty" included). Last here, so that a new commit rebuilds no virtualenv.
FROM base AS runtime
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
ARG GIT_COMMIT=""
ENV PIPELINE_GIT_COMMIT=$GIT_COMMIT
LABEL org.opencontainers.image.revision=$GIT_COMMIT

# The one list of which packages each target copies: `pick TARGET PACKAGE...`. A missing package
# fails the build. tests/deploy checks that each target's packages import only packages of the
# same list.
FROM base AS code
COPY . /src
WORKDIR /src
RUN set -eu; \
    pick() { \
        target=$1; shift; mkdir -p "/out/$target"; \
        for name in "$@"; do \
            if [ ! -f "$name/__init__.py" ]; then \
                echo "target $target: package $name/ is not in the build context" >&2; exit 1; \
            fi; \
            cp -R "$name" "/out/$target/"; \
        done; \
    }; \
    pick trainer   mlpipeline_model common jobs service runs dataloader augmenter trainer; \
    pick evaluator mlpipeline_model common jobs service runs dataloader evaluator; \
    pick explainer mlpipeline_model common jobs service runs dataloader explainer; \
    pick dashboard mlpipeline_model common jobs service runs dataloader launcher dashboard; \
    pick predictor mlpipeline_model common service runs dataloader predictor

# --- one target per app service -----------------------------------------------------------------

FROM runtime AS trainer
COPY --from=code /out/trainer/ /app/
USER 10001:10001
# A one-shot job has no port: it is healthy while the MLflow server it logs to answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000').rstrip('/') + '/health', timeout=4)"]
CMD ["python", "-m", "trainer", "--data-dir", "/data", "--experiment", "demo", "--resume", "auto"]

FROM runtime AS evaluator
COPY --from=code /out/evaluator/ /app/
USER 10001:10001
EXPOSE 5006
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5006/health', timeout=4)"]
CMD ["uvicorn", "evaluator.app:app", "--http", "service.protocol:BoundedHead", "--host", "0.0.0.0", "--port", "5006"]

FROM runtime AS explainer
COPY --from=code /out/explainer/ /app/
USER 10001:10001
EXPOSE 5005
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/health', timeout=4)"]
CMD ["uvicorn", "explainer.app:app", "--http", "service.protocol:BoundedHead", "--host", "0.0.0.0", "--port", "5005"]

FROM runtime AS dashboard
COPY --from=code /out/dashboard/ /app/
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "dashboard/dashboard.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true", "--browser.gatherUsageStats", "false", "--browser.serverAddress", "localhost", "--client.toolbarMode", "minimal", "--server.allowedHosts", "localhost", "--server.allowedHosts", "127.0.0.1"]

FROM runtime AS predictor
COPY --from=code /out/predictor/ /app/
USER 10001:10001
EXPOSE 5007
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5007/health', timeout=4)"]
CMD ["uvicorn", "predictor.app:app", "--http", "service.protocol:BoundedHead", "--host", "0.0.0.0", "--port", "5007"]
