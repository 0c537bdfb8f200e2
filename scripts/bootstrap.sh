#!/usr/bin/env bash
# Installs everything `make demo` and `make test` need on a fresh Debian 12 /
# Ubuntu machine, and nothing twice: each step checks before it acts, so a
# second run takes seconds. Caches live outside the checkout (OMERO_BACKUP_CACHE)
# so a fresh clone on the same machine reuses the venv, the zeroc-ice wheel and
# the podman image.
set -euo pipefail

CACHE=${OMERO_BACKUP_CACHE:-/var/cache/omero-backup}
HERE=$(cd "$(dirname "$0")/.." && pwd)
REQS="$HERE/requirements/dev.txt"
ICE_VERSION=3.6.5
SYSTEM_PYTHON=/usr/bin/python3   # a venv on root's pyenv python is unreadable to the omero user

START=$(date +%s)
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi

# --- Debian packages -------------------------------------------------------
PKGS=(postgresql postgresql-client rdiff-backup podman runc debootstrap
      openssh-client openssh-server rsync git make gcc g++ python3 python3-dev
      python3-venv libssl-dev libbz2-dev util-linux procps iproute2 tar gzip
      shellcheck restic pgbackrest)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- OMERO system user (the sandbox's server files belong to it) ------------
if ! getent passwd omero-server >/dev/null; then
  log "creating system user omero-server"
  $SUDO useradd --system --create-home --home-dir /var/lib/omero-server --shell /bin/bash omero-server
fi

$SUDO mkdir -p "$CACHE/wheels"
$SUDO chmod 0755 "$CACHE"

# --- zeroc-ice 3.6.5 wheel for CPython 3.11 (built once, ~7 min on 2 cores) --
PYTAG=$($SYSTEM_PYTHON -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
ICE_WHEEL=$(find "$CACHE/wheels" -maxdepth 1 -name "zeroc_ice-${ICE_VERSION}-${PYTAG}-*.whl" | head -n1)
if [ -z "$ICE_WHEEL" ]; then
  log "building zeroc-ice ${ICE_VERSION} wheel for ${PYTAG} (one time, several minutes)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  $SYSTEM_PYTHON -m venv "$work/buildenv"
  "$work/buildenv/bin/pip" install -q --upgrade pip setuptools wheel
  "$work/buildenv/bin/pip" download -q --no-deps --no-binary :all: -d "$work" "zeroc-ice==${ICE_VERSION}"
  tar -C "$work" -xzf "$work/zeroc-ice-${ICE_VERSION}.tar.gz"
  src="$work/zeroc-ice-${ICE_VERSION}"
  # CPython 3.11 merged eval.h into Python.h and hid PyThreadState.frame.
  sed -i 's|^#include <eval.h>|/* eval.h merged into Python.h in 3.11 */|' "$src/src/Slice.cpp"
  "$work/buildenv/bin/python" "$HERE/scripts/patch_ice_util.py" "$src/src/Util.cpp"
  # build_ext -j compiles the ~100 C++ sources on every core (pip wheel would use one).
  (cd "$src" && "$work/buildenv/bin/python" setup.py -q build_ext -j "$(nproc)" bdist_wheel -d "$work/dist" >"$work/build.log" 2>&1) \
    || { tail -n 40 "$work/build.log" >&2; exit 1; }
  $SUDO cp "$work"/dist/zeroc_ice-*.whl "$CACHE/wheels/"
  ICE_WHEEL=$(find "$CACHE/wheels" -maxdepth 1 -name "zeroc_ice-${ICE_VERSION}-${PYTAG}-*.whl" | head -n1)
  rm -rf "$work"; trap - EXIT
fi

# --- project venv (pinned; keyed by the requirements' hash) -----------------
REQ_HASH=$(sha256sum < "$REQS" | cut -c1-12)
VENV="$CACHE/venv-$REQ_HASH"
if [ ! -x "$VENV/bin/ansible-playbook" ] || [ ! -f "$VENV/.complete" ]; then
  log "creating venv $VENV (pinned requirements)"
  rm -rf "$VENV"
  $SUDO $SYSTEM_PYTHON -m venv "$VENV"
  $SUDO "$VENV/bin/pip" install -q --upgrade pip wheel setuptools
  $SUDO "$VENV/bin/pip" install -q "$ICE_WHEEL" -r "$REQS"
  $SUDO touch "$VENV/.complete"
fi
$SUDO chmod -R a+rX "$VENV"
$SUDO ln -sfn "$VENV" "$CACHE/venv"

# ansible-test fetches get-pip from a host this network does not reach; give it
# a stand-in that bootstraps pip from the interpreter's own ensurepip.
ATCACHE="${HOME}/.ansible/test/cache"
mkdir -p "$ATCACHE"
for v in 24_2 24_3 25_0 25_1 25_2; do
  [ -f "$ATCACHE/get_pip_$v.py" ] || cp "$HERE/scripts/get_pip_offline.py" "$ATCACHE/get_pip_$v.py"
done

log "ready: venv $VENV ($(( $(date +%s) - START )) s)"
