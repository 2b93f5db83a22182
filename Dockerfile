# optiq: MuJoCo-ready image for GPU hosts (CUDA torch from the normal package index).
# Build the CPU-only variant with:  docker build --build-arg VARIANT=cpu -t optiq:cpu .
# Headless video uses EGL (MUJOCO_GL=egl); if EGL has no device, run with MUJOCO_GL=osmesa.
FROM python:3.11-slim-bookworm

ARG VARIANT=gpu
ARG GIT_COMMIT=unknown

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    WANDB_MODE=offline \
    OPTIQ_GIT_COMMIT=${GIT_COMMIT} \
    OPTIQ_VENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH}

# ffmpeg for video, git for run records, make for the shared install target;
# EGL/OSMesa/GL come from scripts/install.sh below, as on every other machine.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg git make \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 optiq
WORKDIR /opt/optiq

# Dependencies first, so code edits do not reinstall them.
COPY pyproject.toml constraints.txt README.md Makefile ./
COPY scripts/install.sh scripts/install.sh
COPY optiq/__init__.py optiq/__init__.py
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ "${VARIANT}" = "cpu" ]; then export OPTIQ_TORCH_INDEX=https://download.pytorch.org/whl/cpu; fi \
    && OPTIQ_EXTRAS=all,dev bash scripts/install.sh \
    && rm -rf /var/lib/apt/lists/*

COPY --chown=optiq:optiq . .
RUN mkdir -p outputs && chown optiq:optiq outputs
USER 1000:1000
VOLUME ["/opt/optiq/outputs"]
CMD ["python", "run_all.py", "--help"]
