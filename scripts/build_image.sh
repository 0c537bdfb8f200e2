#!/usr/bin/env bash
# Builds the Debian 12 image the molecule scenarios run their hosts from.
# No image registry is reachable on the machines this project targets, so the
# image is made from Debian packages (debootstrap) and imported into podman.
#
#   OMERO_BACKUP_TEST_IMAGE  use this image instead (e.g. one from a registry);
#                            nothing is built, it is pulled if missing.
#   OMERO_BACKUP_MIRROR      Debian mirror (default: the one apt already uses).
#
# Prints the image name on stdout; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/tests/podman/containers.conf}
DEFAULT_IMAGE=localhost/omero-backup-debian:12
SUITE=bookworm
# Hosts in the scenarios play an OMERO.server host and a backup store: they need
# PostgreSQL 15, rdiff-backup and sshd, plus python3 for Ansible.
PACKAGES=python3,python3-psycopg2,openssh-server,openssh-client,postgresql,postgresql-client,rdiff-backup,restic,pgbackrest,sudo,locales,procps,iproute2,ca-certificates
# The label lets a changed recipe rebuild the cached image: bump RECIPE_REVISION
# when the steps below change.
RECIPE_REVISION=2
RECIPE=$(printf '%s %s %s' "$RECIPE_REVISION" "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)

log() { printf '\033[1m[build_image]\033[0m %s\n' "$*" >&2; }

if [ -n "${OMERO_BACKUP_TEST_IMAGE:-}" ] && [ "$OMERO_BACKUP_TEST_IMAGE" != "$DEFAULT_IMAGE" ]; then
  if ! podman image exists "$OMERO_BACKUP_TEST_IMAGE"; then
    log "pulling $OMERO_BACKUP_TEST_IMAGE"
    podman pull -q "$OMERO_BACKUP_TEST_IMAGE" >&2
  fi
  echo "$OMERO_BACKUP_TEST_IMAGE"
  exit 0
fi

IMAGE=$DEFAULT_IMAGE
if podman image exists "$IMAGE" &&
   [ "$(podman image inspect --format '{{ index .Labels "omero_backup.recipe" }}' "$IMAGE")" = "$RECIPE" ]; then
  log "reusing $IMAGE"
  echo "$IMAGE"
  exit 0
fi

debian_mirror() {
  # The first non-security Debian URI in apt's sources (deb822 or one-line).
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${OMERO_BACKUP_MIRROR:-$(debian_mirror)}

command -v debootstrap >/dev/null || { echo "debootstrap is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
root=$(mktemp -d /var/tmp/omero-backup-image.XXXXXX)
discard_root() {
  # An interrupted debootstrap can leave /proc or /sys mounted inside the root.
  awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$root" "$root.log"
}
trap discard_root EXIT
log "debootstrap $SUITE from $MIRROR (about a minute)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 ||
  { tail -n 30 "$root.log" >&2; exit 1; }
# Package caches and lists are dead weight in an image that never runs apt.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# sshd needs its privilege-separation directory; debootstrap does not create it.
mkdir -p "$root/run/sshd"
# Host keys made now would be shared by every container; hosts run ssh-keygen -A.
rm -f "$root"/etc/ssh/ssh_host_*
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null 2>&1 || true

log "importing into podman as $IMAGE"
tar -C "$root" -c . | podman import --quiet \
  --change 'CMD ["/bin/sleep", "infinity"]' \
  --change "LABEL omero_backup.recipe=$RECIPE" \
  --change 'ENV LANG=C.UTF-8' \
  - "$IMAGE" >/dev/null
echo "$IMAGE"
