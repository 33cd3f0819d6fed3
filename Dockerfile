# Image for the liqstress collector and worker (docker-compose.yml runs both from it).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . /src
RUN pip install . \
    && useradd --create-home --uid 10001 liqstress

# Faust keeps its data directory under the working directory.
USER liqstress
WORKDIR /home/liqstress

EXPOSE 9464
ENTRYPOINT ["liqstress"]
CMD ["--help"]
