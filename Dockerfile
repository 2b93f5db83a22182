# optiq: MuJoCo-ready image, GPU variant by default (CUDA torch from the normal package index).
#   CPU variant:   docker build --build-arg VARIANT=cpu -t optiq:cpu .
#   torch index:   --build-arg TORCH_INDEX=URL (a mirror), TORCH_INDEX= (empty: the normal index,
#                  i.e. pip's own configuration); default "auto": PyTorch's CPU wheels for cpu,
#                  the normal index for gpu
#   extras:        --build-arg EXTRAS=all (no dev tools, ~85 MB less; `make test` then needs them)
# Headless video: EGL (MUJOCO_GL=egl) or OSMesa (MUJOCO_GL=osmesa), ffmpeg from imageio-ffmpeg.
# Two stages: `venv` builds /opt/venv (and keeps binutils for stripping), the runtime stage
# copies only the venv. README "Docker" lists what each big part of the image is for.

# ---------------------------------------------------------------- venv: build /opt/venv
FROM python:3.11-slim-bookworm AS venv

ARG VARIANT=gpu
ARG TORCH_INDEX=auto
ARG EXTRAS=all,dev

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPTIQ_VENV=/opt/venv

# binutils: `strip`, for this stage only
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/optiq
# Only what the install needs, so edits of the code or README do not reinstall the dependencies
# (pyproject's readme gets an empty stand-in here; the runtime stage has the real one).
COPY pyproject.toml constraints.txt ./
COPY scripts/install.sh scripts/install.sh
COPY optiq/__init__.py optiq/__init__.py

# The Python part of scripts/install.sh (the one install path), then what no run needs:
# byte-code (the runtime stage compiles what the pipeline imports), test suites of packages,
# torch's C++ headers and test binaries, and symbol tables of torch's and pyarrow's
# libraries (each stripped copy kept only if it still loads).
RUN set -eu; \
    if [ "${VARIANT}" != cpu ] && [ "${VARIANT}" != gpu ]; then echo "VARIANT must be cpu or gpu, got '${VARIANT}'" >&2; exit 1; fi; \
    index="${TORCH_INDEX}"; \
    if [ "${index}" = auto ]; then \
        if [ "${VARIANT}" = cpu ]; then index=https://download.pytorch.org/whl/cpu; else index=; fi; \
    fi; \
    echo "torch index: ${index:-the normal index}"; \
    touch README.md; \
    OPTIQ_STEPS=python OPTIQ_TORCH_INDEX="${index}" OPTIQ_EXTRAS="${EXTRAS}" bash scripts/install.sh; \
    sp=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    find /opt/venv -depth -type d -name __pycache__ -exec rm -rf {} +; \
    find "${sp}" -depth -type d -name tests -exec rm -rf {} +; \
    rm -rf "${sp}/torch/test" "${sp}/torch/include"; \
    if [ -d "${sp}/torch/bin" ]; then find "${sp}/torch/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} +; fi; \
    for f in "${sp}"/torch/lib/*.so* "${sp}"/pyarrow/*.so*; do \
        [ -f "${f}" ] || continue; \
        strip --strip-unneeded -o "${f}.stripped" "${f}" 2>/dev/null || { rm -f "${f}.stripped"; continue; }; \
        if /opt/venv/bin/python -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "${f}.stripped" 2>/dev/null; \
        then mv "${f}.stripped" "${f}"; else rm -f "${f}.stripped"; echo "kept symbols: ${f}"; fi; \
    done; \
    PYTHONDONTWRITEBYTECODE=1 /opt/venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "ok")'

# ---------------------------------------------------------------- runtime
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    WANDB_MODE=offline \
    OPTIQ_VENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    RUFF_CACHE_DIR=/tmp/ruff-cache \
    PYTEST_ADDOPTS="-p no:cacheprovider"

WORKDIR /opt/optiq
# make, for `make test` / `make quick`; EGL/OSMesa/GL from scripts/install.sh, as on every other
# machine (no git: the build records the commit in OPTIQ_GIT_COMMIT; no apt ffmpeg: imageio-ffmpeg's
# is the one every install uses).
COPY scripts/install.sh scripts/install.sh
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && OPTIQ_STEPS=system bash scripts/install.sh \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 optiq
COPY --from=venv /opt/venv /opt/venv
COPY . .

# Byte-code for what the pipeline, the CLI and the tests import (compiled once here: the runtime
# user cannot write to /opt/venv); `make` inside the image finds the venv installed; `ffmpeg` on
# PATH; the outputs folder for the image's own user.
RUN set -eu; \
    python -c 'import importlib, pkgutil, optiq; [importlib.import_module(m.name) for m in pkgutil.walk_packages(optiq.__path__, "optiq.")]'; \
    python -c 'import moviepy.video.io.ffmpeg_writer, rliable.library, rliable.metrics, wandb, minari, datasets, imitation.algorithms.dagger, imitation.algorithms.adversarial.gail, matplotlib.pyplot, tensorboard, stable_baselines3.common.vec_env'; \
    python -m pytest -q --collect-only tests >/dev/null || echo "warning: collecting the tests failed"; \
    ln -s "$(python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" /usr/local/bin/ffmpeg; \
    touch /opt/venv/.install-stamp; \
    mkdir -p outputs && chown optiq:optiq outputs

ARG GIT_COMMIT=unknown
ENV OPTIQ_GIT_COMMIT=${GIT_COMMIT}
USER 1000:1000
VOLUME ["/opt/optiq/outputs"]
# Checks the outputs folder; started as root (as docker-compose.yml does) it runs the command as
# the host user who owns ./outputs. See scripts/docker-entrypoint.sh.
ENTRYPOINT ["/bin/sh", "/opt/optiq/scripts/docker-entrypoint.sh"]
CMD ["python", "run_all.py", "--help"]
