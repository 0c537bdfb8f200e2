#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: db_restore
short_description: Restore the OMERO database from a verified dump into an empty database
version_added: 0.1.0
description:
  - Restores a dump made by M(omero.backup.db_dump) (or a plain C(pg_dump -Fc) file with O(verify=false)) as the OMERO
    restore procedure describes, with the checks it leaves to the reader.
  - Before anything else the dump is checked against its manifest (every file's size and sha256, and C(complete=true));
    a missing or incomplete manifest is refused unless O(verify=false).
  - Creates the owner role (C(LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE), password O(owner_password)) and an empty UTF8
    database from C(template0) owned by it when they are missing, as the OMERO install guide's "create a non-superuser
    database user" and "create a database" steps do.
  - Refuses a non-empty target database unless O(state=replaced), which ends its sessions, drops and recreates it and
    says so. Never restores data only into an existing schema (the OMERO triggers reject it).
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
author:
  - omero.backup contributors (@ome)
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
attributes:
  check_mode:
    support: full
    details:
      - Verifies the dump, inspects the role and the target database and reports what it would create, replace or
        analyze. Changes nothing and takes no lock.
  diff_mode:
    support: full
    details:
      - Shows the role and the database before and after (absent, empty, not empty, restored from which dump, ANALYZE
        pending).
notes:
  - Idempotent through the database comment. The comment is not part of a C(pg_dump) without C(--create), so it stays
    with the database and does not travel in later dumps of it.
  - A database restored with the same dump is left alone even with O(state=replaced); drop it (or restore another dump)
    to restore it again.
  - An existing O(owner) role is left as it is; O(owner_password) (or O(owner_from_roles_file)) is used only when the
    role is created. The password is sent as a SCRAM-SHA-256 verifier computed on the managed host, so the clear text is
    not in the server's logs.
  - O(login_user) must be able to create roles and databases (a superuser in practice).
  - The OMERO.server using the database must be stopped; O(state=replaced) ends every session on the target database.
  - Restore the configuration first and the binary repository afterwards (the OMERO restore order).
  - ANALYZE runs as O(login_user), which must own the tables or be a superuser; tables it may not analyze are skipped
    with a warning from PostgreSQL, passed on as a task warning.
  - The lock serialises runs on this host only, and only runs that use the same O(lock_dir) and name the server the same
    way (socket directory or host name, and port).
options:
  src:
    description:
      - The dump (file or C(.pg_dump.d) directory), its C(.manifest.json), or a directory of dumps, where the newest
        dump with a complete manifest (of O(db) if there is one, else of any database) is taken.
    type: path
    required: true
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
      - V(replaced) drops a non-empty target (its content is lost) and restores into a new empty one.
    type: str
    choices: [present, replaced]
    default: present
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
    type: bool
    default: false
  pg_bindir:
    description:
      - Directory of the PostgreSQL client tools when several major versions are installed. Unset uses C(PATH).
    type: path
'''

EXAMPLES = r'''
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
  returned: always
  type: str
manifest:
  description: Its manifest, V(null) when it has none.
  returned: always
  type: str
format:
  description: Format of the dump, V(custom) or V(directory).
  returned: always
  type: str
sha256:
  description: sha256 of the dump (for a directory dump, of its C(sha256  relpath) listing), as recorded in the comment.
  returned: always
  type: str
duration:
  description: Seconds the verification, restore and ANALYZE took.
  returned: when a restore or ANALYZE ran
  type: float
analyzed:
  description: Whether ANALYZE ran (would run, in check mode).
  returned: always
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
  returned: always
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
  description: Whether a non-empty database was dropped and recreated.
  returned: always
  type: bool
schema_version:
  description: OMERO schema version of the restored database (of the dump in check mode).
  returned: always
  type: str
  sample: OMERO5.4
schema_patch:
  description: OMERO schema patch.
  returned: always
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
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.common import OmeroBackupError, module_runner
from ansible_collections.omero.backup.plugins.module_utils.dbrestore import DbRestoreError, restore
from ansible_collections.omero.backup.plugins.module_utils.postgres import PostgresError, postgres_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.params import check_params


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        src=dict(type='path', required=True),
        db=dict(type='str', default='omero'),
        owner=dict(type='str', default='omero'),
        owner_password=dict(type='str', no_log=True),
        owner_from_roles_file=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'replaced'], default='present'),
        jobs=dict(type='int', default=1),
        analyze=dict(type='bool', default=True),
        lock_dir=dict(type='path'),
        verify=dict(type='bool', default=True),
        expected_schema=dict(type='str'),
        force=dict(type='bool', default=False),
        pg_bindir=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module, jobs=['jobs'])
    try:
        result = restore(module.params, module_runner(module), check_mode=module.check_mode)
    except DbRestoreError as exc:
        done = exc.result or {}
        for warning in done.pop('warnings', []):
            module.warn(warning)
        module.fail_json(msg=str(exc), **done)
    except (OmeroBackupError, PostgresError) as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop('warnings', []):
        module.warn(warning)
    diff = result.pop('diff', None)
    if module._diff and diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
