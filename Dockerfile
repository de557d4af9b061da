# The API and worker image. Build: docker build -t maas-backend .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 MAAS_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/opt/maas/kernel-cache
# libgomp: numba/numpy threading; libjpeg/libpng come with Pillow wheels; dlib-bin ships its own library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY maas ./maas
COPY routing ./routing
COPY ticketing ./ticketing
COPY clearing ./clearing
# The routing kernels are compiled into the image (python -m routing.warmup): a start on a CPU like the
# builder's loads them; elsewhere they compile once at start-up, before /health says ready.
RUN pip install . && useradd --create-home --uid 10001 maas && mkdir -p /data /opt/maas/kernel-cache \
 && python -m routing.warmup > /dev/null && chown -R maas /data /opt/maas/kernel-cache
USER maas
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=5 --start-period=600s CMD curl -fsS http://127.0.0.1:8000/health || exit 1
CMD ["maas", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
