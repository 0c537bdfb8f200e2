#!/usr/bin/env bash
# `make demo`: build the sandbox (a miniature OMERO.server) at a fixed place and
# run the collection against it on localhost. Rebuilt from scratch on every run.
# The place is under root-owned /var/lib, not world-writable /var/tmp, where
# another local user could take the name first.
#   OMERO_BACKUP_DEMO_ROOT  where the sandbox lives (default /var/lib/omero-backup-demo)
#   OMERO_BACKUP_DEMO_OBJECTS  how many data-dir objects (default 200)
#   OMERO_BACKUP_DEMO_ENGINE  the data dir engine, rdiff-backup (default) or restic: the set then rides in one
#                             encrypted restic snapshot (a repository under the demo's store, a random password)
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${OMERO_BACKUP_VENV:-/var/cache/omero-backup/venv}
DEMO_ROOT=${OMERO_BACKUP_DEMO_ROOT:-/var/lib/omero-backup-demo}
OBJECTS=${OMERO_BACKUP_DEMO_OBJECTS:-200}
ENGINE=${OMERO_BACKUP_DEMO_ENGINE:-rdiff-backup}
case "$ENGINE" in rdiff-backup|restic) ;; *) echo "OMERO_BACKUP_DEMO_ENGINE=$ENGINE: use rdiff-backup or restic" >&2; exit 2 ;; esac
PY="$VENV/bin/python"

log() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }

[ -x "$PY" ] || { echo "no venv at $VENV: run scripts/bootstrap.sh (make bootstrap) first" >&2; exit 1; }
export PYTHONPATH="$HERE/tools${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)

if [ -e "$DEMO_ROOT" ]; then
  log "removing the previous demo sandbox at $DEMO_ROOT"
  "$PY" -m omero_sandbox destroy "$DEMO_ROOT" >/dev/null
fi
log "building the sandbox at $DEMO_ROOT ($OBJECTS objects, 12 orphans)"
"$PY" -m omero_sandbox build "$DEMO_ROOT" --objects "$OBJECTS" --orphans 12 --seed 1 --summary >/dev/null

# The collection is used from this checkout through a throw-away collections tree.
COLLECTIONS=$(mktemp -d /tmp/omero-backup-demo-collections.XXXXXX)
trap 'rm -rf "$COLLECTIONS"' EXIT
mkdir -p "$COLLECTIONS/ansible_collections/omero"
ln -s "$HERE" "$COLLECTIONS/ansible_collections/omero/backup"

# ansible-playbook on localhost with the collection from this checkout.
playbook() {
  PATH="$VENV/bin:$PATH" \
  ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS" \
  ANSIBLE_PYTHON_INTERPRETER="$PY" \
  ANSIBLE_LOCALHOST_WARNING=0 \
  ANSIBLE_INVENTORY_UNPARSED_WARNING=0 \
  ANSIBLE_RETRY_FILES_ENABLED=0 \
  ANSIBLE_CALLBACK_RESULT_FORMAT=yaml \
    "$VENV/bin/ansible-playbook" "$@"
}

log "running omero.backup.info through ansible-playbook"
playbook -i localhost, "$HERE/playbooks/demo_info.yml" \
    -e "sandbox_json=$DEMO_ROOT/sandbox.json" -e "backup_dest=$DEMO_ROOT/backups"

log "the whole story: backup -> disaster -> restore -> verify (playbooks/demo.yml)"
DEMO_VARS=$(mktemp /tmp/omero-backup-demo-vars.XXXXXX.json)   # 0600 by mktemp: it holds passwords
trap 'rm -rf "$COLLECTIONS" "$DEMO_VARS"' EXIT
# With restic, the engine, a random repository password (written by the roles to a 0600 file) and its file go in
# the same private vars file: never on a command line.
"$PY" - "$DEMO_ROOT/sandbox.json" "$DEMO_VARS" "$ENGINE" "$DEMO_ROOT" <<'PYEOF'
import json, secrets, sys
demo = {"omero_demo_sandbox": json.load(open(sys.argv[1])), "omero_backup_datadir_engine": sys.argv[3]}
if sys.argv[3] == "restic":
    demo.update(omero_backup_restic_password=secrets.token_urlsafe(24),
                omero_backup_restic_password_file=sys.argv[4] + "/secrets/restic-password")
json.dump(demo, open(sys.argv[2], "w"))
PYEOF
log "data dir engine: $ENGINE"
playbook -i localhost, -c local "$HERE/playbooks/demo.yml" -e "@$DEMO_VARS"

"$PY" - "$DEMO_ROOT/sandbox.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d['counts']
print()
print('Sandbox at %s' % d['root'])
print('  PostgreSQL  socket %s port %s (superuser postgres, owner omero; passwords in sandbox.json)'
      % (d['postgres']['host'], d['postgres']['port']))
print('  OMERODIR    %s   config %s' % (d['omerodir'], d['omero_config']))
print('  data dir    %s: %d pixels, %d thumbnails, %d files, %d filesets (%d import logs), %d orphans'
      % (d['datadir'], c['pixels'], c['thumbnails'], c['files'], c['filesets'], c['import_logs'], c['orphans']))
PYEOF
log "done in $(( $(date +%s) - start ))s; the sandbox keeps running. Stop or remove it with:"
log "  PYTHONPATH=$HERE/tools $PY -m omero_sandbox stop|destroy $DEMO_ROOT"
