# syntax=docker/dockerfile:1
# fragscan in a container. Two variants; every step but the base is shared:
#   docker build -t fragscan .                                  # CUDA (default): needs `docker run --gpus all`
#   docker build -t fragscan:cpu --build-arg VARIANT=cpu .      # CPU only, a much smaller image
# Use (data read from /data, results written to /out; see README "Docker"):
#   docker run --gpus all -v "$PWD/data:/data:ro" -v "$PWD/out:/out" fragscan \
#     scan resnet50 cifar10 --data-root /data --out /out
# Nothing is downloaded at run time (HF_HUB_OFFLINE=1): mount weights under /data and pass --weights.

ARG VARIANT=cuda

# The CUDA variant: PyTorch's own runtime image (CUDA 12.4 + cuDNN 9 libraries, torch and torchvision).
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime AS base-cuda

# The CPU variant: the same torch release from PyTorch's CPU wheel index (no CUDA libraries).
FROM python:3.11-slim AS base-cpu
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.5.1 torchvision==0.20.1

# base-${VARIANT} names one of the two stages above, not a registry image, so there is no tag to pin.
# hadolint ignore=DL3006
FROM base-${VARIANT} AS fragscan
ENV HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /opt/fragscan
COPY pyproject.toml README.md ./
COPY fragscan ./fragscan
# torch and torchvision come from the base; pip adds fragscan and its other dependencies.
RUN pip install --no-cache-dir .
# A numeric user (uid 1000, the usual first host user) so files written to /out are owned sensibly;
# run with --user "$(id -u):$(id -g)" to match another host user.
RUN useradd --create-home --uid 1000 --user-group fragscan \
    && mkdir -p /data /out \
    && chown 1000:1000 /data /out
USER 1000:1000
VOLUME ["/data", "/out"]
WORKDIR /out
ENTRYPOINT ["fragscan"]
CMD ["--help"]
