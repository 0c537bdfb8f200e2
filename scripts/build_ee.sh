#!/usr/bin/env bash
# Builds the execution environment of execution-environment-debian.yml with
# ansible-builder and podman, for tests/integration/test_execution_environment.py
# and `make ee`. No image registry is reachable on the machines this project
# targets, so the base image is the local Debian 12 image scripts/build_image.sh
# makes (debian:12-slim in the file is overridden through EE_BASE_IMAGE).
#
#   OMERO_BACKUP_EE_BASE_IMAGE  base image (default: scripts/build_image.sh's)
#   OMERO_BACKUP_EE_TARBALL     collection tarball (default: built from this checkout)
#   OMERO_BACKUP_EE_IMAGE       image name (default localhost/omero-backup-ee:debian)
#
# The image is reused while its label matches a hash of everything that goes
# into it: the definition, the apt adapter, the collection's file checksums
# (FILES.json, not the tarball's bytes, which carry build times), the base
# image's id and ansible-builder's version.
# Prints the image name on stdout; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/tests/podman/containers.conf}
VENV=${OMERO_BACKUP_VENV:-${OMERO_BACKUP_CACHE:-/var/cache/omero-backup}/venv}
export PATH="$VENV/bin:$PATH"
IMAGE=${OMERO_BACKUP_EE_IMAGE:-localhost/omero-backup-ee:debian}
DEFINITION=execution-environment-debian.yml
ADAPTER=extensions/ee/apt-pkgmgr
# Bump when the build steps below change what ends up in the image.
RECIPE_REVISION=1

log() { printf '\033[1m[build_ee]\033[0m %s\n' "$*" >&2; }
die() { echo "build_ee: $*" >&2; exit 1; }

command -v ansible-builder >/dev/null || die "ansible-builder is missing (requirements/dev.txt; scripts/bootstrap.sh installs it)"

work=$(mktemp -d /tmp/omero-backup-ee.XXXXXX)
trap 'rm -rf "$work"' EXIT

version=$(sed -n 's/^version: *//p' "$HERE/galaxy.yml")
tarball_name=omero-backup-$version.tar.gz
# The definitions name the tarball; a version bump must update them too.
grep -q "source: ./$tarball_name\$" "$HERE/$DEFINITION" ||
  die "$DEFINITION does not install $tarball_name (galaxy.yml version $version); update its tarball name"

if [ -n "${OMERO_BACKUP_EE_TARBALL:-}" ]; then
  cp "$OMERO_BACKUP_EE_TARBALL" "$work/$tarball_name"
else
  ansible-galaxy collection build --output-path "$work" "$HERE" >/dev/null
fi
[ -f "$work/$tarball_name" ] || die "no $tarball_name (OMERO_BACKUP_EE_TARBALL names $(basename "${OMERO_BACKUP_EE_TARBALL:-?}"))"

BASE=${OMERO_BACKUP_EE_BASE_IMAGE:-$("$HERE/scripts/build_image.sh")}
base_id=$(podman image inspect --format '{{.Id}}' "$BASE") || die "base image $BASE is not in podman's store"

recipe=$(
  {
    echo "$RECIPE_REVISION"
    ansible-builder --version
    echo "$base_id"
    cat "$HERE/$DEFINITION" "$HERE/$ADAPTER"
    tar -xzOf "$work/$tarball_name" FILES.json
  } | sha256sum | cut -c1-12)

if podman image exists "$IMAGE" &&
   [ "$(podman image inspect --format '{{ index .Labels "omero_backup.ee_recipe" }}' "$IMAGE")" = "$recipe" ]; then
  log "reusing $IMAGE"
  echo "$IMAGE"
  exit 0
fi
old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)

# ansible-builder reads the definition's files relative to the definition.
mkdir -p "$work/def/$(dirname "$ADAPTER")"
cp "$HERE/$DEFINITION" "$work/def/"
cp "$HERE/$ADAPTER" "$work/def/$ADAPTER"
mv "$work/$tarball_name" "$work/def/"

# --layers=false: the image is cached whole (by the label), and intermediate
# stage images would pile up untagged on every rebuild.
build_args=(--pull=never --layers=false --label "omero_backup.ee_recipe=$recipe")
# pip inside the build reaches PyPI with the host's CA bundle, which holds the
# CA of a TLS-inspecting proxy where there is one.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  build_args+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

log "building $IMAGE on $BASE with ansible-builder (about a minute)"
t0=$SECONDS
(cd "$work/def" && ansible-builder build -v3 -f "$DEFINITION" -c "$work/context" -t "$IMAGE" \
    --build-arg "EE_BASE_IMAGE=$BASE" --extra-build-cli-args "${build_args[*]}") >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; die "ansible-builder build failed"; }
log "built $IMAGE in $((SECONDS - t0)) s"

# The image this one replaced, now untagged; kept when a container still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "$IMAGE"
