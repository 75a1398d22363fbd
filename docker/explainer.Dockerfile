# syntax=docker/dockerfile:1
# Explainer service (FastAPI, port 5005): Grad-CAM, SHAP and Captum explanations for a run.
# Build from the repository root: docker build -f docker/explainer.Dockerfile -t mlpipeline/explainer .
# TORCH_INDEX_URL (build arg, default empty = the torch pinned in requirements.txt, a CUDA build on
# Linux x86_64): set it to PyTorch's CPU-only wheel index (the URL on PyTorch's "Get started"
# page) for an image several GB smaller that runs on CPU only.

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

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app \
    MPLCONFIGDIR=/tmp/matplotlib \
    DATA_DIR=/data \
    ARTIFACTS_DIR=/artifacts \
    PYTHONPATH=/app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /data /artifacts \
    && chown app:app /data /artifacts
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY common/ common/
COPY jobs/ jobs/
COPY runs/ runs/
COPY dataloader/ dataloader/
COPY augmenter/ augmenter/
COPY launcher/ launcher/
COPY trainer/ trainer/
COPY evaluator/ evaluator/
COPY explainer/ explainer/
COPY dashboard/ dashboard/
USER 10001:10001
EXPOSE 5005
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/health', timeout=4)"]
CMD ["uvicorn", "explainer.app:app", "--host", "0.0.0.0", "--port", "5005"]
