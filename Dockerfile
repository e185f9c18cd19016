# One image for every bcsync process (compose.yaml picks the command per service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . /src
RUN pip install /src && rm -rf /src

# Never run as root: the processes need no privileges, only the network.
RUN useradd --system --create-home --uid 10001 bcsync
USER bcsync
WORKDIR /home/bcsync

CMD ["bcsync", "--help"]
