#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: missing_files
short_description: Report the database rows of OMERO whose files are absent from the data directory
version_added: 0.4.0
description:
  - The inverse of cleanse. Lists the C(originalfile) rows of ManagedRepository and C(Files/), the C(pixels) rows
    with a file in C(Pixels/) and the C(thumbnail) rows whose file is absent, by the server's id/path rules (the
    same as cleanse and M(omero.backup.verify)).
  - Set-based; one query per kind and one listing of the directories, never a query or a stat per row (on
    1 million rows it takes about as long as a bare C(find); see docs/verify.md).
  - A link in ManagedRepository (an in-place import) counts as present; a symlinked directory there (another volume)
    is entered.
  - Fails when a file is missing (unless O(fail_on_missing=false)); the restore role runs it after every restore.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
options:
  db:
    description: Name of the OMERO database.
    type: str
    default: omero
  datadir:
    description: The data directory to check.
    type: path
    default: /OMERO
  managed_dir:
    description: The managed repository (C(omero.managed.dir)); defaults to C(ManagedRepository) in O(datadir).
    type: path
  report_file:
    description: A JSON report (mode 0600, written atomically) with the counts and every missing file.
    type: path
  max_listed:
    description: How many missing files RV(missing) holds at most (the report file holds all).
    type: int
    default: 100
  fail_on_missing:
    description: Fail the task when a file is missing.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: List the rows whose files did not come back with the restore
  omero.backup.missing_files:
    db: omero
    datadir: /OMERO
    report_file: /var/lib/omero-backup/missing-files.json
  become: true
  become_user: postgres
'''

RETURN = r'''
ok:
  description: V(true) when no file is missing.
  returned: always
  type: bool
problems:
  description: One sentence per kind with missing files.
  returned: always
  type: list
  elements: str
counts:
  description: Rows and missing files per kind (C(Files), C(Pixels), C(Thumbnails), C(ManagedRepository)).
  returned: always
  type: dict
  sample: {"Files": {"rows": 1200, "missing": 0}, "ManagedRepository": {"rows": 53000, "missing": 2}}
missing_total:
  description: Missing files of every kind.
  returned: always
  type: int
missing:
  description: Missing files (kind, id, data-directory relative path), at most O(max_listed).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "ManagedRepository", "id": 5123, "path": "ManagedRepository/user-1_2/2023-03/01/09-00-00.000/image.tif"}]
datadir:
  description: The data directory checked.
  returned: always
  type: str
managed_dir:
  description: The managed repository checked.
  returned: always
  type: str
managed_repo_uuid:
  description: The uuid of the ManagedRepository row.
  returned: always
  type: str
duration:
  description: Seconds the report took.
  returned: always
  type: float
walk_duration:
  description: Seconds the listing of the directories took (the database is read meanwhile).
  returned: always
  type: float
report_file:
  description: O(report_file).
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.missing import argument_spec, run


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_params(module)
    run_step(module, run, module.params, check_mode=module.check_mode)


if __name__ == '__main__':
    main()
