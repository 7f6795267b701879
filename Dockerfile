# Judge Auditor: one image for the API (`auditor serve`), the workers (`auditor worker`) and the
# scheduler (`auditor beat`). Configuration comes from AUDITOR_* environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True

# Pango and a font for WeasyPrint (PDF reports).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY auditor ./auditor
COPY workers ./workers
COPY reports ./reports
RUN pip install ".[pdf]"

# Run unprivileged; beat keeps its schedule file in /var/lib/auditor.
RUN useradd --create-home --uid 10001 auditor \
    && mkdir -p /var/lib/auditor \
    && chown auditor /var/lib/auditor
USER auditor
WORKDIR /home/auditor

EXPOSE 8000
CMD ["auditor", "serve", "--host", "0.0.0.0", "--port", "8000"]
