#!/usr/bin/env bash
# `make image-check`: build the image with whichever engine is here (docker, else podman), run a
# tiny pipeline in it the way docker-compose.yml does (started as root, the entrypoint runs it as
# the owner of the mounted outputs folder), check that its videos exist and belong to you, then
# run `make test` (ruff and the test suite) inside the image.
#
#   ENGINE=docker|podman   default: docker if its engine answers; else, where
#                          ../shared/tools/container-check exists (machines with no engine and no
#                          registry) and we are root, that tool with --tests; else podman
#   VARIANT=cpu|gpu        default cpu (the smoke run uses the CPU either way)
#   TORCH_INDEX=URL        passed as --build-arg when set (empty: the normal index)
#   IMAGE=optiq:cpu        tag to build and run
#   BUILD_OPTS="..."       more build options, e.g. "-v /wheels:/wheels:ro" for a local wheel folder
#   SKIP_TESTS=1           build and smoke only;  KEEP=1 keeps the outputs folders
#
# ../shared/tools/container-check does the same with podman and a stand-in base image, and runs
# the tests with pytest instead of `make test` (see README, Docker).
set -euo pipefail
cd "$(dirname "$0")/.."

VARIANT="${VARIANT:-cpu}"
IMAGE="${IMAGE:-optiq:$VARIANT}"
if [ -z "${ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
  elif [ -x ../shared/tools/container-check ] && [ "$(id -u)" -eq 0 ]; then
    check=(../shared/tools/container-check --tests --variant "$VARIANT")
    if [ -n "${TORCH_INDEX+set}" ]; then check+=(--build-arg "TORCH_INDEX=$TORCH_INDEX"); fi
    echo "image-check: no Docker engine here; running ${check[*]}"
    exec "${check[@]}" .
  elif command -v podman >/dev/null; then ENGINE=podman
  else
    echo "image-check: no container engine: docker's does not answer and podman is not installed" >&2
    if [ -x ../shared/tools/container-check ]; then
      echo "  on these machines run (as root): ../shared/tools/container-check --tests" >&2
    fi
    exit 2
  fi
fi

dur() { local s=$1; if [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi; }
T0=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/optiq-image-check.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "image-check: kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

build=("$ENGINE" build --build-arg "VARIANT=$VARIANT" -t "$IMAGE")
if [ -n "${TORCH_INDEX+set}" ]; then build+=(--build-arg "TORCH_INDEX=$TORCH_INDEX"); fi
if commit=$(git rev-parse --short HEAD 2>/dev/null); then build+=(--build-arg "GIT_COMMIT=$commit"); fi
# shellcheck disable=SC2206  # BUILD_OPTS is a list of options on purpose
if [ -n "${BUILD_OPTS:-}" ]; then build+=(${BUILD_OPTS}); fi
build+=(.)
echo "==> build: ${build[*]}"
t=$(date +%s)
"${build[@]}"
build_s=$(($(date +%s) - t))
size=$("$ENGINE" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')
echo "==> built $IMAGE: $size in $(dur "$build_s")"

# As docker-compose.yml runs it: root at the start, outputs and hparams.yml mounted from here.
run=("$ENGINE" run --rm --user 0:0 -v "$PWD/hparams.yml:/opt/optiq/hparams.yml:ro")
mkdir -p "$WORK/outputs" "$WORK/test-outputs"
smoke=("${run[@]}" -v "$WORK/outputs:/opt/optiq/outputs" "$IMAGE" python run_all.py --env Hopper-v5
       --preset quick --seeds 0 --set demos.n_episodes=2 --set bc.n_epochs=2
       --set finetune.total_timesteps=2048 --no-progress)
echo "==> smoke: ${smoke[*]}"
t=$(date +%s)
"${smoke[@]}"
smoke_s=$(($(date +%s) - t))
mp4s=$(find "$WORK/outputs" -name '*.mp4' -size +0c | wc -l)
foreign=$(find "$WORK/outputs" ! -uid "$(id -u)" | head -3)
if [ "$mp4s" -eq 0 ]; then echo "image-check: FAIL: the smoke run wrote no mp4" >&2; exit 1; fi
if [ -n "$foreign" ]; then echo "image-check: FAIL: outputs not owned by uid $(id -u): $foreign" >&2; exit 1; fi
summary="image-check ($ENGINE): build OK ($size, $(dur "$build_s")), smoke OK ($mp4s mp4, all owned by uid $(id -u), $(dur "$smoke_s"))"

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "==> make test in the image"
  t=$(date +%s)
  if ! "${run[@]}" -v "$WORK/test-outputs:/opt/optiq/outputs" "$IMAGE" make test 2>&1 | tee "$WORK/tests.log"; then
    echo "image-check: FAIL: make test in the image (build and smoke were OK)" >&2
    exit 1
  fi
  result=$(grep -E '[0-9]+ (passed|failed)' "$WORK/tests.log" | tail -1 | sed -E 's/=+//g; s/^ +| +$//g')
  summary="$summary, make test OK (${result:-?}, $(dur $(($(date +%s) - t))))"
fi
echo
echo "$summary  [total $(dur $(($(date +%s) - T0)))]"
