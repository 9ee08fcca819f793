# ktrdr: API, processors and workers from one image (CPU torch).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# CPU-only torch first, so the pinned torch==2.13.0 below is already satisfied
# and pip does not pull the multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY ktrdr ./ktrdr
COPY migrations ./migrations
RUN pip install -e .

RUN useradd --create-home ktrdr && mkdir -p /data/artifacts && chown -R ktrdr /data
USER ktrdr
ENV KTRDR_DATA_DIR=/data CHECKPOINT_ARTIFACTS_PATH=/data/artifacts

EXPOSE 8000
ENTRYPOINT ["ktrdr"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
