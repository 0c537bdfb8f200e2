#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: verify
short_description: Check that an OMERO database and a data directory belong together
version_added: 0.1.0
description:
  - The check to run after a restore or in a restore drill, before OMERO.server is trusted with users again.
  - Fails when the database's C(omero.db.uuid) has no C(.omero/repository/<uuid>/repo_uuid) in the data directory
    (the server would register a new repository and lose every imported fileset), when that C(repo_uuid) is not the
    hash of a C(Repository) row of the database, when the schema version in C(dbpatch) differs from
    O(expected_schema), or when sampled C(originalfile) and C(pixels) rows point at files that are missing.
  - Sampled rows are chosen at random, so repeated runs cover more of a large store.
  - Symbolic links left by in-place imports are restored as links; when their target is missing they are listed in
    RV(dangling_links) but are not a failure (their targets live outside the data directory).
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.info_module
options:
  db:
    description:
      - Name of the OMERO database (C(omero_server_dbname)).
    type: str
    default: omero
  datadir:
    description:
      - The OMERO binary repository to check (C(omero_server_datadir)).
    type: path
    default: /OMERO
  managed_dir:
    description:
      - C(omero.managed.dir) when it is outside the data dir (docs/layout.md); default O(datadir)C(/ManagedRepository).
    type: path
  sample:
    description:
      - How many C(originalfile) rows and how many C(pixels) rows to check for their file. V(0) skips the file check.
    type: int
    default: 100
  expected_schema:
    description:
      - The schema version the database must have, as C(dbpatch.currentversion) (for example V(OMERO5.4)), or
        C(currentversion__currentpatch) (for example V(OMERO5.4__0)) to check the patch as well.
      - Use the version recorded in the backup's manifest, or the one the installed OMERO.server expects.
    type: str
  expected_db_uuid:
    description:
      - The C(omero.db.uuid) the database must have, for example the one recorded when the backup was taken.
    type: str
  fail_on_problems:
    description:
      - Fail the task when a problem is found. With V(false), the problems are only returned in RV(problems).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Check the restored database and data directory belong together
  omero.backup.verify:
    db: omero
    datadir: /OMERO
    expected_schema: OMERO5.4__0
    sample: 500
    login_user: postgres
  become: true
  become_user: postgres

- name: Report, without failing, on a drill's scratch copy
  omero.backup.verify:
    db: omero_drill
    datadir: /var/tmp/omero-drill/OMERO
    fail_on_problems: false
  register: drill_verdict
'''

RETURN = r'''
ok:
  description: V(true) when no problem was found.
  returned: always
  type: bool
problems:
  description: What is wrong, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["/OMERO/.omero/repository/0f2c.../ is missing: the data directory does not belong to this database"]
db_uuid:
  description: The C(omero.db.uuid) of the database.
  returned: always
  type: str
schema_version:
  description: C(dbpatch.currentversion) of the newest patch row.
  returned: always
  type: str
  sample: OMERO5.4
schema_patch:
  description: C(dbpatch.currentpatch) of the newest patch row.
  returned: always
  type: int
  sample: 0
repository:
  description: How the data directory's C(.omero/repository) matches the database.
  returned: always
  type: dict
  contains:
    dir_exists:
      description: Whether C(.omero/repository/<db_uuid>) exists in the data directory.
      type: bool
    repo_uuid:
      description: Content of its C(repo_uuid) file.
      type: str
    matches_database:
      description: Whether RV(repository.repo_uuid) is the hash of a C(Repository) row.
      type: bool
    managed_repo_uuid:
      description: Content of C(ManagedRepository/.omero/repository/<db_uuid>/repo_uuid).
      type: str
    managed_matches_database:
      description: Whether it is the hash of the C(ManagedRepository) row.
      type: bool
samples:
  description: Rows checked and files missing, per table.
  returned: always
  type: dict
  sample: {"originalfile": {"checked": 100, "missing": 0}, "pixels": {"checked": 100, "missing": 0}}
missing:
  description: Data-directory relative paths of missing files (at most 20).
  returned: always
  type: list
  elements: str
dangling_links:
  description: Links whose target is missing (in-place imports; at most 20).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.verify import run
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import OperationFailed, run_step


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        db=dict(type='str', default='omero'),
        datadir=dict(type='path', default='/OMERO'),
        managed_dir=dict(type='path'),
        sample=dict(type='int', default=100),
        expected_schema=dict(type='str'),
        expected_db_uuid=dict(type='str'),
        fail_on_problems=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module)
    run_step(module, _verify, module.params)


def _verify(params):
    if params['sample'] < 0:
        raise OperationFailed('sample must be 0 or more, got %d' % params['sample'])
    try:
        result = run(params)
    except postgres.PostgresError as exc:
        raise OperationFailed(str(exc), {'ok': False, 'problems': [str(exc)]})
    result.pop('datadir', None)
    result.pop('db', None)
    result['changed'] = False
    if params['fail_on_problems'] and not result['ok']:
        raise OperationFailed('verification failed: ' + '; '.join(result['problems']), result)
    return result


if __name__ == '__main__':
    main()
