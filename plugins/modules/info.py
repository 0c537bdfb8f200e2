#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: info
short_description: Report what a backup of an OMERO.server host needs to know
version_added: 0.1.0
description:
  - Reads, without changing anything, the facts a backup or restore of OMERO.server depends on.
  - They are the PostgreSQL server and client versions, the OMERO schema version recorded in C(dbpatch),
    the C(omero.db.uuid) of the database, whether the data directory holds the matching
    C(.omero/repository/<uuid>) directory, the size of each top-level data-directory entry and the free
    space at a backup destination.
  - A database that cannot be reached is reported in RV(postgres.error) rather than failing the task,
    so the module also describes a host whose database is down.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.info_module
options:
  db:
    description:
      - Name of the OMERO database (C(omero_server_dbname) in C(ome.omero_server)).
    type: str
    default: omero
  datadir:
    description:
      - The OMERO binary repository (C(omero.data.dir), C(omero_server_datadir)).
    type: path
    default: /OMERO
  database:
    description:
      - Query PostgreSQL and its client tools (RV(postgres), RV(omero)).
      - Set to V(false) on a host that only holds backups (the store), to learn only about directories and free space.
    type: bool
    default: true
  datadir_sizes:
    description:
      - Walk the data directory to report the size of each top-level entry.
      - Set to V(false) on very large stores when only the other facts are needed.
    type: bool
    default: true
  backup_dest:
    description:
      - A backup destination whose free space to report. It may not exist yet; the nearest existing parent is measured.
    type: path
'''

EXAMPLES = r'''
- name: Learn what the backup will cover
  omero.backup.info:
    db: omero
    datadir: /OMERO
    backup_dest: /mnt/backup
    login_user: postgres
  become: true
  become_user: postgres
  register: omero_info

- name: Measure the free space where the store keeps its repository, without querying PostgreSQL
  omero.backup.info:
    database: false
    datadir: /var/backups/omero
    datadir_sizes: false
    backup_dest: /var/backups/omero/datadir/rdiff-backup-data
  register: omero_store_info

- name: Refuse to back up a data dir that does not belong to the database
  ansible.builtin.assert:
    that: omero_info.datadir.repository_dir_exists
    fail_msg: "/OMERO has no .omero/repository/{{ omero_info.omero.db_uuid }}"
'''

RETURN = r'''
postgres:
  description: PostgreSQL facts.
  returned: unless O(database=false)
  type: dict
  contains:
    server_version:
      description: Version of the server, V(null) when unreachable.
      type: str
      sample: "15.18"
    client_version:
      description: Version of the C(pg_dump) client on the host.
      type: str
      sample: "15.18"
    reachable:
      description: Whether the database could be queried.
      type: bool
    database_bytes:
      description: Size of the database as C(pg_database_size) reports it.
      type: int
      returned: when reachable
    error:
      description: Why the server or client could not be queried, V(null) otherwise.
      type: str
omero:
  description: Facts from the OMERO database.
  returned: unless O(database=false)
  type: dict
  contains:
    schema_version:
      description: C(dbpatch.currentversion) of the newest patch row.
      type: str
      sample: OMERO5.4
    schema_patch:
      description: C(dbpatch.currentpatch) of the newest patch row.
      type: int
      sample: 0
    db_uuid:
      description: The C(omero.db.uuid) configuration value.
      type: str
datadir:
  description: Facts about the binary repository.
  returned: always
  type: dict
  contains:
    path:
      description: The data directory examined.
      type: str
    exists:
      description: Whether it exists.
      type: bool
    repository_dir_exists:
      description:
        - Whether C(.omero/repository/<db_uuid>) exists; V(null) when the uuid is unknown (or O(database=false)).
        - V(false) means the data directory and the database do not belong together.
      type: bool
    sizes:
      description: Bytes used by each top-level entry (empty when O(datadir_sizes=false)).
      type: dict
      sample: {"ManagedRepository": 1073741824, "Pixels": 52428800}
    total_bytes:
      description: Sum of RV(datadir.sizes).
      type: int
backup_dest:
  description: Free space at O(backup_dest).
  returned: when O(backup_dest) is set
  type: dict
  contains:
    path:
      description: The destination.
      type: str
    exists:
      description: Whether it exists yet.
      type: bool
    free_bytes:
      description: Bytes available to an unprivileged writer on its filesystem.
      type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.info import gather
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        db=dict(type='str', default='omero'),
        datadir=dict(type='path', default='/OMERO'),
        database=dict(type='bool', default=True),
        datadir_sizes=dict(type='bool', default=True),
        backup_dest=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module)
    run_step(module, _info, module.params, module_runner(module))


def _info(params, runner):
    return dict(gather(params, runner), changed=False)


if __name__ == '__main__':
    main()
