# One image for every process: api, worker, beat, migrate and the local provider.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# WordNet 3.0 (Debian's wordnet-base, /usr/share/wordnet): what the meteor metric of evals reads.
RUN apt-get update && apt-get install -y --no-install-recommends wordnet-base \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
# Only the runtime packages: the dev stack and its tools stay out of the image.
COPY service ./service
COPY emulator ./emulator
COPY workers ./workers
COPY ftmcli ./ftmcli
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 ftm \
    && mkdir -p /data && chown ftm /data
USER ftm
ENV FTM_DATA_DIR=/data
EXPOSE 8000
CMD ["ftm", "api", "--host", "0.0.0.0", "--port", "8000"]
