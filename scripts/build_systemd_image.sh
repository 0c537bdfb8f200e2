#!/usr/bin/env bash
# Builds the image tests/integration/test_schedule.py runs its hosts from: the
# molecule image (scripts/build_image.sh) plus systemd, cron and ansible-core,
# so a container can boot systemd as PID 1 (podman run --systemd=always
# IMAGE /sbin/init) or run cron-only with `sleep infinity` as PID 1.
#
# ansible-core comes from wheels downloaded once into a cache on this machine
# and installed without network into /opt/ansible (not /usr/bin: the test also
# proves the schedule refuses a host whose ansible-playbook is missing).
#
#   OMERO_BACKUP_CACHE   cache root (default /var/cache/omero-backup)
#   OMERO_BACKUP_VENV    the tools venv whose pip downloads the wheels and whose
#                        ansible-core version the image gets
#
# Prints the image name on stdout; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/tests/podman/containers.conf}
CACHE=${OMERO_BACKUP_CACHE:-/var/cache/omero-backup}
VENV=${OMERO_BACKUP_VENV:-$CACHE/venv}
IMAGE=localhost/omero-backup-debian-systemd:12
PACKAGES="systemd systemd-sysv dbus cron"
# Bump when the steps below change; the label then no longer matches and the
# cached image is rebuilt.
RECIPE_REVISION=1

log() { printf '\033[1m[build_systemd_image]\033[0m %s\n' "$*" >&2; }

BASE=$("$HERE/scripts/build_image.sh")
BASE_ID=$(podman image inspect --format '{{ .Id }}' "$BASE")
ANSIBLE_CORE_VERSION=$("$VENV/bin/python" -c 'from ansible.release import __version__; print(__version__)')
RECIPE=$(printf '%s %s %s %s' "$RECIPE_REVISION" "$BASE_ID" "$PACKAGES" "$ANSIBLE_CORE_VERSION" | sha256sum | cut -c1-12)

if podman image exists "$IMAGE" &&
   [ "$(podman image inspect --format '{{ index .Labels "omero_backup.recipe" }}' "$IMAGE")" = "$RECIPE" ]; then
  log "reusing $IMAGE"
  echo "$IMAGE"
  exit 0
fi

# Wheels for Debian 12's /usr/bin/python3 (3.11), kept apart from the
# molecule scenario's wheel cache.
WHEELS=$CACHE/schedule-wheels/ansible-core-$ANSIBLE_CORE_VERSION
if [ ! -e "$WHEELS/.complete" ]; then
  log "downloading ansible-core $ANSIBLE_CORE_VERSION wheels into $WHEELS"
  mkdir -p "$WHEELS"
  "$VENV/bin/pip" download -q --disable-pip-version-check --only-binary=:all: \
    --python-version 3.11 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform linux_x86_64 \
    --dest "$WHEELS" "ansible-core==$ANSIBLE_CORE_VERSION" pip >&2
  touch "$WHEELS/.complete"
fi

context=$(mktemp -d /var/tmp/omero-backup-systemd-image.XXXXXX)
trap 'rm -rf "$context"' EXIT
cat >"$context/Containerfile" <<EOF
FROM $BASE
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends $PACKAGES >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# No host keys in the image (hosts make their own), so sshd would fail at every
# boot and leave systemd "degraded"; the tests need no sshd.
RUN systemctl mask ssh.service
RUN /usr/bin/python3 -m venv --without-pip /opt/ansible \\
 && /opt/ansible/bin/python /wheels/\$(cd /wheels && ls pip-*.whl | head -n1)/pip install -q \\
      --no-index --find-links /wheels --disable-pip-version-check ansible-core==$ANSIBLE_CORE_VERSION \\
 && /opt/ansible/bin/ansible-playbook --version >/dev/null
LABEL omero_backup.recipe=$RECIPE
EOF
log "building $IMAGE from $BASE (systemd, cron, ansible-core $ANSIBLE_CORE_VERSION)"
podman build --quiet --volume "$WHEELS:/wheels:ro" --tag "$IMAGE" "$context" >/dev/null
echo "$IMAGE"
