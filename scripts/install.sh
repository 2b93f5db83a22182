#!/usr/bin/env bash
# The one install path for README, CI and the Dockerfile.
#
#   1. apt libraries for headless MuJoCo rendering (EGL, OSMesa) when missing and we can install
#   2. a virtualenv ($OPTIQ_VENV, default .venv; OPTIQ_VENV=system installs into the current python)
#   3. torch first ($OPTIQ_TORCH_SPEC, default torch==2.13.0; $OPTIQ_TORCH_INDEX picks an index,
#      e.g. PyTorch's CPU wheels in the CPU image), so nothing pulls another build
#   4. optiq and its dependencies, pinned by constraints.txt
#   5. imitation 1.0.1 with --no-deps: its release pins gymnasium~=0.29 / SB3~=2.2.1, yet
#      its BC and rollout code work with our versions (tests/test_imitation_compat.py proves it)
#
# OPTIQ_STEPS (default "system,python") picks the parts: "system" is step 1, "python" steps 2-5.
# The Dockerfile runs "python" in its build stage and "system" in the runtime stage.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${OPTIQ_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${OPTIQ_TORCH_SPEC:-torch==2.13.0}"
EXTRAS="${OPTIQ_EXTRAS:-all,dev}"
STEPS=",${OPTIQ_STEPS:-system,python},"
case "$STEPS" in
  *,system,* | *,python,*) ;;
  *) echo "OPTIQ_STEPS must name system and/or python, got '${OPTIQ_STEPS}'" >&2; exit 2 ;;
esac

# (not `ldconfig -p | grep -q`: grep quits at the first match and pipefail turns the SIGPIPE into "missing")
have_lib() { grep -qF "$1" <<<"$(ldconfig -p 2>/dev/null)"; }

install_system_libs() {
  local missing=()
  have_lib "libEGL.so.1" || missing+=(libegl1)
  have_lib "libOSMesa.so" || missing+=(libosmesa6)
  have_lib "libGL.so.1" || missing+=(libgl1)
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "warning: missing ${missing[*]} (needed for video); install them with apt-get as root" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "warning: missing ${missing[*]} and no apt-get; install EGL or OSMesa for video" >&2
    return 0
  fi
  echo "installing ${missing[*]} for headless rendering"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [[ "$STEPS" == *,system,* ]]; then install_system_libs; fi
if [[ "$STEPS" != *,python,* ]]; then exit 0; fi

if [ "$VENV" = "system" ]; then
  PIP=("$PYTHON" -m pip)
else
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  PIP=("$VENV/bin/python" -m pip)
fi

"${PIP[@]}" install -q --upgrade pip
if [ -n "${OPTIQ_TORCH_INDEX:-}" ]; then
  "${PIP[@]}" install -q "$TORCH_SPEC" --index-url "$OPTIQ_TORCH_INDEX"
else
  "${PIP[@]}" install -q "$TORCH_SPEC"
fi
"${PIP[@]}" install -q -c constraints.txt -e ".[${EXTRAS}]"
"${PIP[@]}" install -q --no-deps "imitation==1.0.1"
echo "optiq installed ($("${PIP[@]}" show torch 2>/dev/null | grep ^Version))"
