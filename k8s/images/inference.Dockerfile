# syntax=docker/dockerfile:1
# The CUDA inference worker: Python 3.11 with the tested pins of inference/requirements.txt. The
# PyPI torch wheels bundle the CUDA runtime libraries, so the base needs no CUDA toolkit; the GPU
# driver comes from the node through the NVIDIA container runtime. Runs as UID 10001 on a
# read-only root filesystem (HOME and kernel caches in /tmp, an emptyDir in the manifests).
# Build with inference/ as the context:
#   docker build -f k8s/images/inference.Dockerfile -t twice-inference:dev inference/
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.txt ./
RUN pip install -r requirements.txt

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HOME=/cache/huggingface \
    HF_HUB_OFFLINE=1 \
    PYTHONPATH=/opt/twice
COPY --from=build /opt/venv /opt/venv
# the package as in the repository, with its zoo weights and catalogs (not all are package data)
WORKDIR /opt/twice
COPY twice_inference ./twice_inference
USER 10001:10001
ENTRYPOINT ["python", "-m", "twice_inference.worker"]
CMD ["--device", "cuda"]
