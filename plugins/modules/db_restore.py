#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: db_restore
short_description: Restore the OMERO database from a verified dump, replace it safely, or drop it
version_added: 0.1.0
description:
  - Restores a dump made by M(omero.backup.db_dump) (or a plain C(pg_dump -Fc) file with O(verify=false)) as the OMERO
    restore procedure describes, with the checks it leaves to the reader.
  - Before anything else the dump is checked against O(expected_sha256), the sha256 the backup set record on the store
    names, when given; else against its manifest (every file's size and sha256, and C(complete=true)). A missing or
    incomplete manifest is refused unless O(verify=false) (or O(expected_sha256) vouches for the dump).
  - Then, still before any change, proves that this C(pg_restore) can read the dump. A dump made by a newer major
    C(pg_dump) than this C(pg_restore) (from the manifest) is refused, and C(pg_restore --list) must read its header and
    table of contents.
  - Creates the owner role (C(LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE), password O(owner_password)) and an empty UTF8
    database from C(template0) owned by it when they are missing, as the OMERO install guide's "create a non-superuser
    database user" and "create a database" steps do.
  - Refuses a non-empty target database unless O(state=replaced). Never restores data only into an existing schema
    (the OMERO triggers reject it).
  - O(state=replaced) restores into a temporary database C(<db>_omero_backup_new_<8 hex digits>), checks it and runs
    ANALYZE there, and only then swaps it in. One transaction ends the sessions on O(db), renames it to
    C(<db>_omero_backup_old_<UTC stamp>) and renames the temporary database to O(db). The replaced database is dropped
    afterwards, or kept under that name with O(keep_replaced=true). Any failure before the swap drops the temporary
    database and leaves O(db) as it was. The cluster needs room for both databases meanwhile; see RV(space).
  - A temporary database left by a run killed on the way (or a replaced one it could not drop yet) is found by its
    name and comment and dropped by the next run for the same O(db), whatever its O(state).
  - O(state=absent) drops O(db) after ending its sessions. Only a database carrying an C(omero.backup) comment (made
    by this module, for a restore, a failed one or a replaced one) is dropped unless O(force=true).
  - Runs C(pg_restore --exit-on-error), with O(jobs) workers (C(--single-transaction) when O(jobs=1)).
  - Then gathers the planner statistics with C(vacuumdb --analyze-only) (O(analyze)). C(pg_restore) restores none, and
    until autovacuum reaches OMERO's big tables (C(pixels), C(originalfile), C(event), C(eventlog), C(annotation)...)
    the server plans its queries blind.
  - Takes a lock keyed by host, port and database (in O(lock_dir)) before reading the dump, so a second restore into the
    same database fails at once, naming the pid of the one running, and changes nothing.
  - Records the restore in the database's comment (C(COMMENT ON DATABASE)). While the restore runs, and after a failed
    one, the comment reads C(omero.backup restore NOT COMPLETE ...); after success,
    C(omero.backup restored sha256=<sha256> from <dump> at <time>), followed by C(; ANALYZE pending ...) until ANALYZE
    has run. A run with the dump already restored is V(changed=false), unless its ANALYZE is still pending and
    O(analyze=true), which then runs ANALYZE only.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
attributes:
  check_mode:
    details:
      - Verifies the dump, inspects the role and the target database and reports what it would create, replace or
        analyze. Changes nothing and takes no lock.
  diff_mode:
    details:
      - Shows the role and the database before and after (absent, empty, not empty, restored from which dump, ANALYZE
        pending).
notes:
  - A restore runs the dump's SQL with the rights of O(login_user), a superuser in practice. Restore only dumps whose
    sha256 comes from where the backup was stored (O(expected_sha256)); a manifest beside a dump vouches for nothing
    when others can write there.
  - Every query the module runs in the restored database as O(login_user) (its facts, row counts, schema checks) runs
    with C(search_path=pg_catalog), reads schema-qualified, ordinary tables only, and calls no function of the dump.
    ANALYZE runs as O(login_user) too. PostgreSQL 14.3, 13.7, 12.11, 11.16, 10.21 and later run the index expressions
    of a table during ANALYZE as the table's owner, restricted (CVE-2022-1552); older servers get a warning.
  - Idempotent through the database comment. The comment is not part of a C(pg_dump) without C(--create), so it stays
    with the database and does not travel in later dumps of it.
  - A database restored with the same dump is left alone even with O(state=replaced); drop it (or restore another dump)
    to restore it again.
  - An existing O(owner) role is left as it is; O(owner_password) (or O(owner_from_roles_file)) is used only when the
    role is created. The password is sent as a SCRAM-SHA-256 verifier computed on the managed host, so the clear text is
    not in the server's logs.
  - O(login_user) must be able to create roles and databases (a superuser in practice).
  - The OMERO.server using the database must be stopped; O(state=replaced) and O(state=absent) end every session on
    the target database.
  - Restore the configuration first and the binary repository afterwards (the OMERO restore order).
  - ANALYZE runs as O(login_user), which must own the tables or be a superuser; tables it may not analyze are skipped
    with a warning from PostgreSQL, passed on as a task warning.
  - The lock serialises runs on this host only, and only runs that use the same O(lock_dir) and name the server the same
    way (socket directory or host name, and port).
options:
  engine:
    description:
      - The tool that backs up and restores the database; the roles pass the engine of the set record on.
      - V(pg_dump) restores a dump with C(pg_restore) into O(db), as described above.
      - V(pgbackrest) restores the whole cluster from the pgBackRest repository of O(stanza) to a point in time
        (O(target_type)), either into the stopped cluster O(pg_path) (C(pgbackrest restore --delta), with
        O(state=replaced)) or into a scratch data directory O(scratch_path) on O(scratch_port) for a drill, which is
        started and waited for until it has recovered to the target and promoted. Before anything is touched the
        backup is chosen (the newest whose end precedes the target, or O(set)) and a O(target_time) outside the
        archived range - from the end of the oldest backup to the newest WAL in the repository - is refused.
        O(src), O(db), O(owner), O(owner_password), O(owner_from_roles_file), O(keep_replaced),
        O(expected_sha256), O(jobs), O(analyze), O(verify), O(expected_schema) and O(force) are not used.
      - With V(pgbackrest), O(state=absent) stops and removes a drill cluster in O(scratch_path) (only one this
        module made; a live cluster is never removed).
    type: str
    choices: [pg_dump, pgbackrest]
    default: pg_dump
  src:
    description:
      - The dump (file or C(.pg_dump.d) directory), its C(.manifest.json), or a directory of dumps, where the newest
        dump with a complete manifest (of O(db) if there is one, else of any database) is taken.
      - Required with O(state=present) and O(state=replaced) (O(engine=pg_dump)); not used with O(state=absent).
    type: path
  db:
    description:
      - The database to restore into (C(omero_server_dbname)).
    type: str
    default: omero
  owner:
    description:
      - The role that owns the database (C(omero_server_dbuser), C(omero.db.user)). Created when missing.
      - When the dump's database was owned by a role of another name, its objects are restored as owned by this one.
    type: str
    default: omero
  owner_password:
    description:
      - Password given to O(owner) when the role is created (C(omero_server_dbpassword), C(omero.db.pass)).
    type: str
  owner_from_roles_file:
    description:
      - When O(owner) is created and O(owner_password) is not given, give it the password the dump's roles file
        (C(pg_dumpall --roles-only), saved by M(omero.backup.db_dump) with C(globals=true)) recorded for the dump's
        owner, as the stored SCRAM-SHA-256 or md5 hash. The restored role then accepts the C(omero.db.pass) of the
        restored OMERO configuration without the password being known to the playbook.
      - Only that one password is taken. The roles file is never replayed, since it would reset the password and
        attributes of every role of the source cluster, C(postgres) included, on the target cluster.
      - An md5 hash is salted with the role name, so it is not used when O(owner) differs from the dump's owner.
    type: bool
    default: false
  state:
    description:
      - V(present) restores into a missing or empty database and refuses a non-empty one.
      - V(replaced) restores into a temporary database and swaps it with a non-empty target only when the restore, its
        checks and ANALYZE succeeded; the target's content is then dropped (or kept, O(keep_replaced)). A missing or
        empty target is restored into as with V(present).
      - V(absent) drops O(db) (and the leftovers of killed restores into it); V(changed=false) when it is missing.
    type: str
    choices: [present, replaced, absent]
    default: present
  keep_replaced:
    description:
      - With O(state=replaced), keep the replaced database under the name C(<db>_omero_backup_old_<UTC stamp>)
        (returned as RV(replaced_kept_as)) instead of dropping it after the swap. It is never dropped by the collection;
        drop it with O(state=absent) and O(db) set to that name once it is no longer wanted.
    type: bool
    default: false
  expected_sha256:
    description:
      - The sha256 of the dump as the backup set record on the store names it (for a directory dump, of its
        C(sha256  relpath) listing, as M(omero.backup.db_dump) records it).
      - When given, the dump's own bytes must have it, whatever a manifest beside the dump says; a mismatch is refused
        and nothing is changed. A manifest is then optional, read for its facts only, and must name the same sha256.
      - Not compatible with O(owner_from_roles_file) when the role is created, since the roles file is vouched for only
        by the manifest.
    type: str
  jobs:
    description:
      - Parallel C(pg_restore) workers (custom and directory formats), and C(vacuumdb) connections for O(analyze).
      - At most 4 times the number of CPUs of the managed host; more is refused before anything runs.
    type: int
    default: 1
  analyze:
    description:
      - Run C(vacuumdb --analyze-only) on the restored database, with O(jobs) connections, so that OMERO.server starts
        with planner statistics instead of waiting for autovacuum.
      - V(false) leaves the database comment saying ANALYZE is pending; a later run with V(true) runs it.
    type: bool
    default: true
  lock_dir:
    description:
      - Directory of the lock file C(omero-backup-database-<hash of host, port and db>.lock).
      - Unset takes the collection's lock directory, C(/run/omero-backup) for root (made with mode 0700 when missing), C(~/.omero-backup-locks)
        of the running user otherwise. A lock directory must be owned by the running user or root, writable by its
        owner only, and not a symlink; a lock file in it that another user made (or a symlink) is refused with a
        message naming its owner, so no local user can hold or redirect the lock.
    type: path
  verify:
    description:
      - Check the dump against its manifest first and refuse one without a complete manifest.
      - V(false) is meant for dumps made by other tools; C(pg_restore --exit-on-error) still stops at the first error.
    type: bool
    default: true
  expected_schema:
    description:
      - The OMERO schema version (C(dbpatch.currentversion), e.g. V(OMERO5.4)) the dump must hold, taken from the
        manifest. A dump of another (or unknown) version is refused unless O(force=true).
    type: str
  force:
    description:
      - Restore a dump whose schema version differs from O(expected_schema).
      - With O(state=absent), drop a database that carries no C(omero.backup) comment.
    type: bool
    default: false
  pg_bindir:
    description:
      - Directory of the PostgreSQL client tools when several major versions are installed. Unset uses C(PATH)
        (with O(engine=pgbackrest), C(/usr/lib/postgresql/<PG_VERSION of the restored cluster>/bin)).
    type: path
  stanza:
    description:
      - With O(engine=pgbackrest), the stanza to restore from.
    type: str
    default: omero
  config:
    description:
      - With O(engine=pgbackrest), the configuration file M(omero.backup.db_archive) wrote.
    type: path
    default: /etc/pgbackrest/pgbackrest.conf
  os_user:
    description:
      - With O(engine=pgbackrest), the system user pgBackRest and the restored cluster run as.
    type: str
    default: postgres
  target_type:
    description:
      - With O(engine=pgbackrest), where recovery stops. V(time) at O(target_time); V(immediate) as soon as the backup
        is consistent (its end); V(default) after all archived WAL (the latest state).
    type: str
    choices: [time, immediate, default]
    default: default
  target_time:
    description:
      - With O(target_type=time), an ISO 8601 time (V(2026-12-03T10:30:00Z), V(2026-12-03 10:30:00.25+00:00); without a
        zone it is UTC). Transactions committed up to it are restored. A time before the end of the oldest backup, or
        after the newest WAL in the repository, is refused and nothing is changed.
    type: str
  set:
    description:
      - With O(engine=pgbackrest), the label of the backup to restore. Unset, the newest complete backup that ended
        before O(target_time) (or the newest one).
    type: str
  pg_path:
    description:
      - With O(engine=pgbackrest), the data directory of the stopped cluster to restore into. A non-empty one needs
        O(state=replaced) (overwritten with C(--delta)); it is left stopped, and PostgreSQL replays WAL up to the
        target and promotes when it starts. A running cluster is refused.
    type: path
  scratch_path:
    description:
      - With O(engine=pgbackrest), a missing or empty data directory for a drill cluster (its parent must exist),
        restored with archiving off and its own port and socket.
    type: path
  scratch_port:
    description:
      - The port of the drill cluster in O(scratch_path); required with it, and must be free.
    type: int
  scratch_socket_dir:
    description:
      - The socket directory of the drill cluster. Unset, O(scratch_path).
    type: path
  scratch_start:
    description:
      - Start the drill cluster and wait until it has recovered to the target and promoted.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Replace the database with the dump the backup set names; the old one stays until the new one is complete
  omero.backup.db_restore:
    src: /var/lib/omero-backup/restore/database/omero.2026-11-26T083000Z.pg_dump
    expected_sha256: "{{ backup_set.database.sha256 }}"
    db: omero
    owner: omero
    owner_password: "{{ omero_server_dbpassword }}"
    state: replaced
  become: true
  become_user: postgres

- name: Drop the drill's scratch database
  omero.backup.db_restore:
    db: omero_drill
    state: absent
  become: true
  become_user: postgres

- name: Restore the newest complete dump into a fresh PostgreSQL server
  omero.backup.db_restore:
    src: /OMERO/backup/database
    db: omero
    owner: omero
    owner_password: "{{ omero_server_dbpassword }}"
    expected_schema: OMERO5.4
    jobs: 2
  become: true
  become_user: postgres

- name: A restore drill - the cluster as it was at 10:30 UTC, on port 5499
  omero.backup.db_restore:
    engine: pgbackrest
    stanza: omero
    target_type: time
    target_time: "2026-12-03T10:30:00Z"
    scratch_path: /var/lib/postgresql/drill
    scratch_port: 5499

- name: Replace the current database with a given dump (its content is lost)
  omero.backup.db_restore:
    src: /OMERO/backup/database/omero.2026-11-26T083000Z.pg_dump
    db: omero
    state: replaced
  become: true
  become_user: postgres
'''

RETURN = r'''
restored_from:
  description: The dump restored (or that would be, or that already was).
  returned: with O(state=present) and O(state=replaced)
  type: str
manifest:
  description: Its manifest, V(null) when it has none.
  returned: with O(state=present) and O(state=replaced)
  type: str
format:
  description: Format of the dump, V(custom) or V(directory).
  returned: with O(state=present) and O(state=replaced)
  type: str
sha256:
  description: sha256 of the dump (for a directory dump, of its C(sha256  relpath) listing), as recorded in the comment.
  returned: with O(state=present) and O(state=replaced)
  type: str
duration:
  description: Seconds the verification, restore and ANALYZE took.
  returned: when a restore or ANALYZE ran
  type: float
analyzed:
  description: Whether ANALYZE ran (would run, in check mode).
  returned: with O(state=present) and O(state=replaced)
  type: bool
analyze_duration:
  description: Seconds C(vacuumdb --analyze-only) took.
  returned: when ANALYZE ran
  type: float
  sample: 0.42
lock:
  description: The lock file serialising restores into this database (not taken in check mode).
  returned: success
  type: str
  sample: /run/omero-backup/omero-backup-database-3f1c0a9b2d4e5f607182.lock
created:
  description: What was created (would be, in check mode).
  returned: with O(state=present) and O(state=replaced)
  type: dict
  contains:
    role:
      description: Whether the owner role was created.
      type: bool
    database:
      description: Whether the database was created (also when it was replaced).
      type: bool
owner_password_source:
  description:
    - Where the password of the created owner role came from, V(owner_password), V(roles_file) or V(none).
  returned: when the owner role is created (would be, in check mode)
  type: str
  sample: roles_file
replaced:
  description: Whether a non-empty database was replaced (by the swap of O(state=replaced)).
  returned: with O(state=present) and O(state=replaced)
  type: bool
temporary_database:
  description: The temporary database the dump was restored into before the swap (gone after the run).
  returned: when a non-empty database was replaced
  type: str
  sample: omero_omero_backup_new_3f1c0a9b
replaced_kept_as:
  description: The name the replaced database was kept under (O(keep_replaced=true)); V(null) when it was dropped.
  returned: when a non-empty database was replaced
  type: str
  sample: omero_omero_backup_old_20261126T083000Z
leftovers_dropped:
  description:
    - Temporary or replaced databases of killed restores into O(db) that were dropped (would be, in check mode).
  returned: success
  type: list
  elements: str
dropped:
  description: Whether O(db) was dropped (would be, in check mode).
  returned: with O(state=absent)
  type: bool
pg_restore_version:
  description: Version of the C(pg_restore) that proved the dump readable.
  returned: when a restore ran (would run, in check mode)
  type: str
  sample: "15.18"
archive_version:
  description: Archive format version in the dump's header (C(1.14.0) for PostgreSQL 15's C(pg_dump)).
  returned: when a restore ran (would run, in check mode)
  type: str
  sample: 1.14.0
space:
  description:
    - Room the restore needs. The old database (O(state=replaced)) stays until the new one is complete, so the
      cluster holds both for a while.
  returned: when a restore ran (would run, in check mode)
  type: dict
  contains:
    old_database_bytes:
      description: pg_database_size of the database being replaced (0 when none is).
      type: int
    restore_bytes_estimate:
      description:
        - Estimated size of the restored database. The dump's C(database_bytes) from its manifest (the dumped
          database's size), else 5 times the dump's size (rough).
      type: int
    estimate_from:
      description: V(manifest) or V(dump_size).
      type: str
    peak_bytes:
      description: RV(space.old_database_bytes) + RV(space.restore_bytes_estimate), what the cluster holds before the swap.
      type: int
    tablespace:
      description: The tablespace the restored database goes into (the replaced one's).
      type: str
    path:
      description: Its directory, when the server is local (Unix socket or loopback) and the directory is visible.
      type: str
    free_bytes:
      description:
        - Free bytes there; the run is refused when fewer than RV(space.restore_bytes_estimate) taken from the
          manifest (a warning for the rough estimate).
      type: int
    checked:
      description: Whether free space could be checked (a local server).
      type: bool
schema_version:
  description: OMERO schema version of the restored database (of the dump in check mode).
  returned: with O(state=present) and O(state=replaced)
  type: str
  sample: OMERO5.4
schema_patch:
  description: OMERO schema patch.
  returned: with O(state=present) and O(state=replaced)
  type: int
db_uuid:
  description: C(omero.db.uuid) of the restored database.
  returned: when the database holds the restore
  type: str
row_counts:
  description: Rows of a few OMERO tables in the restored database.
  returned: when the database holds the restore
  type: dict
  sample: {"image": 40, "pixels": 40, "originalfile": 160}
backup_type:
  description: With O(engine=pgbackrest), the type of the backup restored (RV(restored_from) is its label).
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: str
backup_time:
  description: Its end (ISO 8601 UTC).
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: str
target_type:
  description: The recovery target type.
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: str
target_time:
  description: The recovery target time, UTC; V(null) unless O(target_type=time).
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: str
archived_from:
  description: The start of the archived range (the end of the oldest backup), ISO 8601 UTC.
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: str
archived_until:
  description: The end of the archived range (the newest WAL in the repository), ISO 8601 UTC.
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: str
archived_until_epoch:
  description: The same as an epoch.
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: float
pg_path:
  description: The data directory restored into (a drill's O(scratch_path)).
  returned: with O(engine=pgbackrest)
  type: str
scratch:
  description: Whether it is a drill cluster.
  returned: with O(engine=pgbackrest)
  type: bool
started:
  description: Whether the drill cluster was started.
  returned: with O(engine=pgbackrest), when a restore ran
  type: bool
promoted:
  description: Whether the drill cluster reached the target and promoted.
  returned: with O(engine=pgbackrest), when a restore ran
  type: bool
removed:
  description: Whether the drill cluster was stopped and removed (O(state=absent)).
  returned: with O(engine=pgbackrest) and O(state=absent)
  type: bool
commands:
  description: The pgBackRest and C(pg_ctl) commands run (would run, in check mode); no secret is ever on them.
  returned: with O(engine=pgbackrest), when a restore ran (would run, in check mode)
  type: list
  elements: list
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.db_restore import restore, restore_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import PostgresError


def main():
    # src is required with state=present/replaced for engine=pg_dump only: that engine says so.
    module = AnsibleModule(argument_spec=restore_argument_spec(), supports_check_mode=True)
    check_params(module, jobs=['jobs'])
    run_step(module, restore, module.params, module_runner(module), check_mode=module.check_mode, errors=(PostgresError,))


if __name__ == '__main__':
    main()
