#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: db_dump
short_description: Dump the OMERO database with pg_dump, verified, with a manifest and retention
version_added: 0.1.0
description:
  - Dumps the OMERO database as the OMERO backup procedure does (C(pg_dump -Fc) to C({dest}/{db}.{timestamp}.pg_dump)),
    or in the directory format (C({db}.{timestamp}.pg_dump.d)) with parallel jobs.
  - The dump is written under a temporary name starting with C(.omero-backup-tmp.), read back in full with
    C(pg_restore -f /dev/null) (C(pg_restore --list) passes truncated and corrupted archives), checked against
    O(min_size), fsynced and only then renamed into place. A failed or killed dump leaves no file that looks complete.
  - Next to each dump, C(<dump>.manifest.json) records every file with its size and sha256, the PostgreSQL server and
    client versions, the OMERO schema version from C(dbpatch), C(omero.db.uuid), start and end time, duration, and
    O(server_stopped). Its last key, C(complete), becomes V(true) only after the dump is in place.
  - With O(globals=true) the roles are saved too (C({db}.{timestamp}.roles.sql)), since C(pg_dump) does not contain the
    non-superuser owner role a restore needs.
  - Takes the collection's lock on O(dest); a second dump into the same destination fails at once with a message
    saying that one is already running.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - Connects, checks the client and server versions and O(compress), compares the free space at O(dest) with the
        database size, and reports the path it would write and the dumps retention would remove. Writes nothing.
notes:
  - Not idempotent by nature, since every run writes a new dump; O(skip_if_newer_than) makes repeated runs V(changed=false).
  - Dumps contain C(session.uuid) values that let anyone attach to live OMERO sessions; files are created mode 0600 and
    directories 0700.
  - The password reaches C(pg_dump) and C(pg_dumpall) in the C(PGPASSWORD) environment variable, never on their command line.
  - Saving the roles with their password hashes needs a superuser O(login_user). Otherwise the roles are saved with
    C(pg_dumpall --no-role-passwords) (from C(pg_roles)) and a warning says so.
  - A dump taken while OMERO.server runs may be inconsistent across tables written in separate transactions; stopping
    the server is safest (record it with O(server_stopped)).
options:
  engine:
    description:
      - The tool that backs up the database; the roles pass C(omero_backup_db_engine) on.
      - V(pg_dump) writes one verified logical dump of O(db) into O(dest), as described above.
      - V(pgbackrest) takes a physical backup (O(type)) of the whole cluster into the pgBackRest repository of
        O(stanza), set up by M(omero.backup.db_archive), which also archives WAL continuously between backups, so
        M(omero.backup.db_restore) reaches any second in the archived range. pgBackRest expires backups beyond
        C(repo1-retention-full) after each backup (RV(pruned) names them); O(format), O(jobs), O(compress),
        O(globals), O(min_size), O(min_keep), O(keep), O(max_age), O(owner), O(group) and O(dest) are not used.
        Run it where pgBackRest runs backups - the database host with a local repository, the repository host
        otherwise.
    type: str
    choices: [pg_dump, pgbackrest]
    default: pg_dump
  db:
    description:
      - Name of the OMERO database (C(omero_server_dbname) in C(ome.omero_server)).
    type: str
    default: omero
  dest:
    description:
      - Directory that receives the dumps. Created mode 0700 when missing; its parent must exist, so an unmounted backup
        volume fails instead of filling the root filesystem.
      - Required with O(engine=pg_dump).
    type: path
  format:
    description:
      - V(custom) is C(pg_dump -Fc), the format of the OMERO documentation; one file.
      - V(directory) is C(pg_dump -Fd), a directory that can be dumped and restored with several O(jobs).
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description:
      - Tables dumped at once (C(pg_dump -j)); more than 1 needs O(format=directory). Uses O(jobs)+1 connections.
      - At most 4 times the number of CPUs of the managed host; more is refused before anything runs.
    type: int
    default: 1
  compress:
    description:
      - Compression passed to C(pg_dump -Z). V(none), a gzip level V(0)-V(9), or V(gzip:N).
      - V(zstd), V(zstd:N), V(lz4) and V(lz4:N) need a PostgreSQL 16 or newer C(pg_dump) and are refused with a clear
        message otherwise.
      - Unset keeps C(pg_dump)'s default (gzip).
    type: str
  globals:
    description:
      - Also save the roles (C(pg_dumpall --roles-only)) as C({db}.{timestamp}.roles.sql), listed in the same manifest.
    type: bool
    default: true
  min_size:
    description:
      - Smallest size in bytes a dump may have; a smaller one is discarded and the task fails.
    type: int
    default: 4096
  server_stopped:
    description:
      - Whether OMERO.server was stopped during the dump. Only recorded in the manifest.
    type: bool
    default: false
  skip_if_newer_than:
    description:
      - When a complete dump of O(db) in O(dest) is younger than this duration (V(20h), V(1d12h), V(90m); see the
        notes on durations), report it and do nothing (V(changed=false)).
    type: str
  min_keep:
    description:
      - Complete dumps always kept, whatever their age. At least 1, so the last complete dump is never removed.
    type: int
    default: 1
  keep:
    description:
      - Keep at most this many complete dumps of O(db); older ones are removed after a successful dump.
      - Unset keeps any number.
    type: int
  max_age:
    description:
      - Remove complete dumps older than this duration (V(8w), V(30d), V(3M); see the notes on durations) after a
        successful dump, beyond O(min_keep).
      - Incomplete dumps older than the newest complete one and leftover temporaries are always removed.
    type: str
  owner:
    description:
      - Owner of the files written (name or uid). Unset keeps the user the module runs as.
    type: str
  group:
    description:
      - Group of the files written (name or gid).
    type: str
  pg_bindir:
    description:
      - Directory of the PostgreSQL client tools (C(/usr/lib/postgresql/16/bin)) when several major versions are
        installed. Unset uses C(PATH).
    type: path
  stanza:
    description:
      - With O(engine=pgbackrest), the stanza of the cluster.
    type: str
    default: omero
  config:
    description:
      - With O(engine=pgbackrest), the configuration file M(omero.backup.db_archive) wrote (read with C(--config)).
    type: path
    default: /etc/pgbackrest/pgbackrest.conf
  type:
    description:
      - With O(engine=pgbackrest), the backup type. V(incr) and V(diff) need a full backup to build on; without one
        pgBackRest takes a full backup and a warning says so.
    type: str
    choices: [full, diff, incr]
    default: incr
  os_user:
    description:
      - With O(engine=pgbackrest), the system user pgBackRest runs as (through C(runuser) when the module runs as
        root) - the cluster's user on the database host, the repository's user on a repository host.
    type: str
    default: postgres
'''

EXAMPLES = r'''
- name: Dump the OMERO database as the postgres user, keeping two weeks of dumps
  omero.backup.db_dump:
    db: omero
    dest: /OMERO/backup/database
    max_age: 2w
    skip_if_newer_than: 20h
  become: true
  become_user: postgres

- name: An incremental pgBackRest backup (set up by omero.backup.db_archive)
  omero.backup.db_dump:
    engine: pgbackrest
    stanza: omero
    type: incr
  register: omero_backup

- name: Parallel dump of a large database with the server stopped
  omero.backup.db_dump:
    db: omero
    dest: /var/backups/omero/database
    format: directory
    jobs: 4
    server_stopped: true
    login_host: db.example.org
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
  register: omero_dump
'''

RETURN = r'''
path:
  description: The dump (a file, or a directory for O(format=directory)); in check mode the one it would write.
  returned: always
  type: str
  sample: /OMERO/backup/database/omero.2026-11-26T083000Z.pg_dump
manifest:
  description: Its manifest, C(<path>.manifest.json).
  returned: always
  type: str
globals_path:
  description: The roles file, V(null) when O(globals=false).
  returned: always
  type: str
size:
  description: Bytes of the dump (all files of a directory dump).
  returned: when a dump was written or skipped
  type: int
sha256:
  description:
    - sha256 of the dump file; for a directory dump, of its C(sha256  relpath) listing (the format of C(sha256sum)).
  returned: when a dump was written or skipped
  type: str
duration:
  description: Seconds the whole dump took (dump, read-through, checksums, publishing).
  returned: when a dump was written or skipped
  type: float
dump_seconds:
  description: Seconds C(pg_dump) ran.
  returned: when a dump was written
  type: float
verify_seconds:
  description: Seconds the C(pg_restore -f /dev/null) read-through took.
  returned: when a dump was written
  type: float
versions:
  description: PostgreSQL versions.
  returned: when the database was contacted
  type: dict
  contains:
    server:
      description: Server version.
      type: str
      sample: "15.18"
    client:
      description: Version of C(pg_dump).
      type: str
      sample: "15.18"
omero:
  description: OMERO facts of the dumped database.
  returned: when the database was contacted
  type: dict
  contains:
    schema_version:
      description: C(dbpatch.currentversion).
      type: str
      sample: OMERO5.4
    schema_patch:
      description: C(dbpatch.currentpatch).
      type: int
    db_uuid:
      description: C(omero.db.uuid).
      type: str
database_bytes:
  description: Size of the database (C(pg_database_size)).
  returned: when the database was contacted
  type: int
free_bytes:
  description: Free bytes at O(dest).
  returned: in check mode
  type: int
pruned:
  description: Paths removed by retention (in check mode, the ones it would remove); with O(engine=pgbackrest), the
    labels of the backups pgBackRest expired.
  returned: always
  type: list
  elements: str
skipped_dump:
  description: Whether no dump was written because O(skip_if_newer_than) found a recent enough one; RV(path) then names it.
  returned: always
  type: bool
format:
  description: The dump format.
  returned: always
  type: str
dest_created:
  description: Whether O(dest) was created (would be, in check mode).
  returned: when O(dest) was missing
  type: bool
stanza:
  description: The pgBackRest stanza.
  returned: with O(engine=pgbackrest)
  type: str
version:
  description: pgBackRest's version.
  returned: with O(engine=pgbackrest)
  type: str
backup_label:
  description: The label of the backup made (or found recent, RV(skipped_dump)); V(null) in check mode.
  returned: with O(engine=pgbackrest)
  type: str
  sample: 20261203-101500F_20261203-111500I
backup_type:
  description: Its type (V(full), V(diff), V(incr)).
  returned: with O(engine=pgbackrest)
  type: str
backup_prior:
  description: The backup it builds on (V(null) for a full one).
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
backup_start:
  description: Epoch of its start.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: int
backup_stop:
  description: Epoch of its end, the earliest time it can be restored to.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: int
backup_time:
  description: Its end, ISO 8601 UTC.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
wal_start:
  description: The first WAL segment it needs.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
wal_stop:
  description: The WAL segment that makes it consistent.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
lsn_start:
  description: Its start LSN.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
lsn_stop:
  description: Its stop LSN.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
repo_size:
  description: Bytes this backup added to the repository.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: int
archive_max:
  description: The newest WAL segment in the repository.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
archived_until:
  description: Time up to which WAL is in the repository (ISO 8601 UTC), the latest point a restore reaches now.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: str
archived_until_epoch:
  description: The same as an epoch.
  returned: with O(engine=pgbackrest), when a backup was made or skipped
  type: int
commands:
  description: The pgBackRest commands run (no secret is ever on them).
  returned: with O(engine=pgbackrest)
  type: list
  elements: list
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.db_dump import dump, dump_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import PostgresError


def main():
    module = AnsibleModule(argument_spec=dump_argument_spec(), supports_check_mode=True)
    check_params(module, jobs=['jobs'])
    run_step(module, dump, module.params, module_runner(module), check_mode=module.check_mode, errors=(PostgresError,))


if __name__ == '__main__':
    main()
