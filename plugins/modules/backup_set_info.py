#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: backup_set_info
short_description: Read and list the backup-set records of an omero.backup store
version_added: 0.2.0
description:
  - Returns the set records of C(<store_path>/sets/), newest first, each with its completeness, and, when O(set_id) is
    given, one set's record parsed (by id, or V(latest) for the one C(sets/latest.json) names).
  - The record's schema, what makes a set complete and the rule for trusting a record file are documented once, in
    M(omero.backup.backup_set), which writes and prunes them.
  - A record is read only from a regular file (never through a symlink) owned by root or the module's user and
    writable by nobody else, in a C(sets/) directory with the same rule; a record readable by others (0644) is read,
    since it holds no secret.
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.info_module
options:
  store_path:
    description:
      - The store directory whose C(sets/) holds the records.
    type: path
    required: true
  set_id:
    description:
      - The set to read, or V(latest) for the one C(sets/latest.json) names (the newest complete set, with a warning,
        when C(latest.json) is missing).
      - A set id is 1 to 128 of C([0-9A-Za-z_.-]), not starting with C(.) or C(-); any other is refused.
      - Unset, only the listing is returned.
    type: str
  require_complete:
    description:
      - With O(set_id), fail when that set is missing or not complete, naming why; V(false) returns it with
        RV(complete) and RV(problems) instead.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Read the newest complete set
  omero.backup.backup_set_info:
    store_path: /srv/backup/omero
    set_id: latest
  delegate_to: backup.example.org
  register: omero_set

- name: List the sets and their completeness
  omero.backup.backup_set_info:
    store_path: /srv/backup/omero
  delegate_to: backup.example.org
  register: omero_sets
'''

RETURN = r'''
sets:
  description: Every record of C(sets/), newest first, with C(set_id), C(path), C(complete), C(time),
    C(format_version), C(increment_time) and C(problems).
  returned: always
  type: list
  elements: dict
latest:
  description: The set C(latest.json) names, V(null) when none.
  returned: always
  type: str
complete_sets:
  description: The ids of the complete sets, newest first.
  returned: always
  type: list
  elements: str
ignored:
  description: Names in C(sets/) that are no set's record (escaped), left alone.
  returned: always
  type: list
  elements: str
set_id:
  description: The set read; V(null) when V(latest) names none.
  returned: when O(set_id) is set
  type: str
  sample: 2026-11-26T083000Z
path:
  description: Its record file.
  returned: when O(set_id) is set
  type: str
  sample: /srv/backup/omero/sets/2026-11-26T083000Z.json
found:
  description: The record file exists.
  returned: when O(set_id) is set
  type: bool
record:
  description: The record as read; V(null) when none could be read.
  returned: when O(set_id) is set
  type: dict
complete:
  description: Whether the set is complete.
  returned: when O(set_id) is set
  type: bool
problems:
  description: Why the set is not complete (empty when it is).
  returned: when O(set_id) is set
  type: list
  elements: str
format_version:
  description: The record's format version.
  returned: when O(set_id) is set
  type: int
time:
  description: Seconds since the epoch of the set's increment (of the file's modification when the record has none).
  returned: when O(set_id) is set
  type: float
components:
  description: The components the record holds.
  returned: when O(set_id) is set
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.backup_set import Options, info_argument_spec, read


def main():
    module = AnsibleModule(argument_spec=info_argument_spec(), supports_check_mode=True)
    check_params(module)
    run_step(module, read, Options.from_params(module.params, info_argument_spec()))


if __name__ == '__main__':
    main()
