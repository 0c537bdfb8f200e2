#!/usr/bin/env bash
# Prints a fingerprint of what a restore must bring back, for one part:
#   fingerprint.sh config     the OMERO config, passwords included
#   fingerprint.sh datadir    the data dir tree (paths, types, modes, owners, sizes, link targets, sha256)
#   fingerprint.sh database   the OMERO schema and a checksum of every table's rows
# Left out on purpose: BioFormatsCache and stale .omero lock files (not backed
# up by design) and the marker datadir_restore leaves in .omero.
set -euo pipefail
case "$1" in
  config)
    cd /opt/omero/server
    OMERODIR=/opt/omero/server/OMERO.server HOME=/opt/omero/server \
      runuser -u omero-server -- /opt/omero/server/OMERO.server/bin/omero config get --show-password
    ;;
  datadir)
    cd /OMERO
    find . \( -path ./BioFormatsCache -o -path './.omero/omero-backup-restored.json' -o -name '.lock' \) -prune \
      -o -mindepth 1 -printf '%P %y %m %u %g %s %l\n' | LC_ALL=C sort
    find . \( -path ./BioFormatsCache -o -name '.lock' \) -prune -o -type f ! -path './.omero/omero-backup-restored.json' \
      -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    ;;
  database)
    export PGHOST=127.0.0.1 PGUSER=postgres PGPASSWORD="$2" PGDATABASE=omero
    # pg_dump 15.14+ brackets its output with \restrict/\unrestrict and a random key.
    pg_dump --schema-only --schema=public --no-comments | grep -v -e '^--' -e '^\\restrict ' -e '^\\unrestrict ' | sed '/^$/d'
    psql -At -c "select tablename from pg_tables where schemaname = 'public' order by 1" | while read -r table; do
      printf '%s %s\n' "$table" "$(psql -At -c "select count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '') from public.\"$table\" t")"
    done
    ;;
  *)
    echo "usage: $0 config|datadir|database [superuser password]" >&2
    exit 2
    ;;
esac
