# syntax=docker/dockerfile:1
# MLflow tracking server (port 5000) with the drivers for the production setting: a PostgreSQL
# backend store (psycopg2) and an S3 artifact store (boto3). mlflow is pinned by requirements.txt.
# Build from the repository root: docker build -f docker/mlflow.Dockerfile -t mlpipeline/mlflow .

FROM python:3.11-slim AS builder
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^mlflow==' /tmp/requirements.txt > /tmp/mlflow.txt \
    && pip install --no-cache-dir -r /tmp/mlflow.txt -c /tmp/requirements.txt \
        psycopg2-binary==2.9.13 boto3==1.44.8

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /mlflow/artifacts \
    && chown -R app:app /mlflow
COPY --from=builder /opt/venv /opt/venv
WORKDIR /mlflow
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--backend-store-uri", "sqlite:////mlflow/mlflow.db", "--artifacts-destination", "/mlflow/artifacts", "--serve-artifacts", "--allowed-hosts", "localhost,localhost:5000,127.0.0.1,127.0.0.1:5000,mlflow,mlflow:5000"]
