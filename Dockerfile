# One image for all three services; compose picks the service with its command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY shared ./shared
COPY auth_service ./auth_service
COPY todo_ws_service ./todo_ws_service
COPY gateway ./gateway
COPY devstack ./devstack
RUN pip install --disable-pip-version-check . \
    && useradd --system --uid 10001 --home /app app \
    && mkdir -p /app/data && chown app /app/data

USER app
EXPOSE 8000 8001 8002
CMD ["python", "-m", "gateway", "--host", "0.0.0.0", "--port", "8000"]
