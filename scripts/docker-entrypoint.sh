#!/bin/sh
# Entrypoint of the optiq image: make sure the outputs folder can be written, then run the command.
#
# Started as root (docker-compose.yml does this: `user: "0:0"`), it runs the command as the
# host user who owns the mounted folders, so everything the container writes into ./outputs
# belongs to that user on the host:
#   1. OPTIQ_UID / OPTIQ_GID, when set;
#   2. else the owner of the outputs folder, when that is not root;
#   3. else (a folder the engine has just created as root) the owner of the mounted hparams.yml,
#      i.e. whoever owns the checkout; the outputs folder is then handed to that user.
# It stays root only when that owner is root too, e.g. under rootless Docker or Podman, where
# root in the container is the host user.
# Started as any other user (the image's default uid 1000, or `docker run --user UID:GID`), it
# creates the outputs folder if it can and warns, with the fix, when it cannot write there.
#
# OPTIQ_OUTPUTS (default /opt/optiq/outputs) and OPTIQ_OWNER_REF (default /opt/optiq/hparams.yml)
# name the two paths; tests/test_container.py runs this script on temporary folders.
set -eu

OUT="${OPTIQ_OUTPUTS:-/opt/optiq/outputs}"
REF="${OPTIQ_OWNER_REF:-/opt/optiq/hparams.yml}"

say() { printf 'optiq-entrypoint: %s\n' "$*" >&2; }

warn_unwritable() {  # $1: the uid that cannot write there
  say "warning: the outputs folder $OUT is not writable by uid $1 (it belongs to uid $(stat -c %u "$OUT" 2>/dev/null || echo '?'))."
  say "  docker compose: leave OPTIQ_UID/OPTIQ_GID unset (the command then runs as the folder's owner) or set them to its owner."
  say "  docker run: add --user 0 (the same stepping down) or --user \"\$(id -u):\$(id -g)\"; rootless podman: --user 0."
}

# A home that uid $1 can write to (matplotlib, wandb and minari keep files there).
writable_home() {
  if [ -n "${HOME:-}" ] && [ -d "$HOME" ] && [ "$(stat -c %u "$HOME")" -eq "$1" ]; then return 0; fi
  home=$(getent passwd "$1" | cut -d: -f6 || true)
  if [ -z "$home" ] || [ ! -d "$home" ] || [ "$(stat -c %u "$home")" -ne "$1" ]; then
    home=/tmp/optiq-home-$1
    mkdir -p "$home"
  fi
  export HOME="$home"
}

if [ "$(id -u)" -ne 0 ]; then
  writable_home "$(id -u)"
  mkdir -p "$OUT" 2>/dev/null || true
  if [ ! -d "$OUT" ] || [ ! -w "$OUT" ]; then warn_unwritable "$(id -u)"; fi
  exec "$@"
fi

# Running as root: find the host user to run as.
uid="${OPTIQ_UID:-}"
gid="${OPTIQ_GID:-}"
if [ -z "$uid" ]; then
  if [ -d "$OUT" ] && [ "$(stat -c %u "$OUT")" -ne 0 ]; then
    uid=$(stat -c %u "$OUT")
    gid=${gid:-$(stat -c %g "$OUT")}
  elif [ -e "$REF" ] && [ "$(stat -c %u "$REF")" -ne 0 ]; then
    uid=$(stat -c %u "$REF")
    gid=${gid:-$(stat -c %g "$REF")}
  else
    uid=0
  fi
fi
gid=${gid:-$uid}
case "$uid$gid" in *[!0-9]*) say "OPTIQ_UID and OPTIQ_GID must be numbers (got '$uid' and '$gid')"; exit 2 ;; esac

mkdir -p "$OUT"
if [ "$uid" -eq 0 ]; then
  exec "$@"
fi
if [ "$(stat -c %u "$OUT")" -eq 0 ]; then
  # Just created by the engine (or by us): hand the folder itself to the user. Never recursive:
  # what is inside belongs to whoever wrote it.
  chown "$uid:$gid" "$OUT"
fi

unset HOME
writable_home "$uid"
case "$HOME" in /tmp/optiq-home-*) chown "$uid:$gid" "$HOME" ;; esac

if ! setpriv --reuid="$uid" --regid="$gid" --clear-groups test -w "$OUT"; then
  warn_unwritable "$uid"
fi
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
