#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: log_dir
short_description: Relocate the OMERO.server log directory
version_added: 0.1.0
description:
  - Sets C(OMERO_LOGS) in the grid application descriptors of an OMERO.server, so that its servers write their logs
    to O(path).
  - Edits C(etc/templates/grid/default.xml), because C(omero admin start) regenerates the files in C(etc/grid/) from
    the templates and would undo a change made only there, and C(etc/grid/default.xml), the file the official OMERO
    backup procedure names; also C(windefault.xml) in both places when present.
  - Only the characters of the C(OMERO_LOGS) value change; the rest of each file stays byte for byte as it was. Each
    file is parsed first, and when any of them is not well-formed XML or does not hold exactly one C(OMERO_LOGS)
    variable the module fails with the file and the parser's message and changes nothing.
  - Creates O(path) when missing, owned by O(user) with O(mode). An existing O(path) that O(user) cannot write to
    is refused rather than re-owned.
  - With O(move_logs=true), moves the logs of the previous log directory (live C(NAME.log), rolled C(NAME.log.N) and
    compressed ones) into O(path), refusing when any of them is open by a process (a running server).
  - Rolled-log housekeeping is M(omero.backup.logs), which finds the relocated directory by itself.
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
attributes:
  check_mode:
    details:
      - Validates every descriptor and reports what would change; changes nothing.
  diff_mode:
    details:
      - Shows each descriptor's text before and after, and the directory to be created.
options:
  path:
    description:
      - The new log directory. An absolute path is recommended; a relative one is relative to O(omerodir), like the
        distribution's own V(var/log/).
      - Written to C(OMERO_LOGS) with a trailing slash, since the descriptor builds each log file name as
        C(${OMERO_LOGS}NAME.log).
    type: path
    required: true
  omerodir:
    description:
      - The OMERO.server directory (C(OMERODIR)).
    type: path
    default: /opt/omero/server/OMERO.server
  datadir:
    description:
      - The OMERO binary repository (C(omero.data.dir)). A O(path) inside its C(ManagedRepository), or anywhere in an
        OMERO repository, is refused.
    type: path
    default: /OMERO
  user:
    description:
      - The OMERO system user that owns a newly created O(path) (its primary group is the group).
    type: str
    default: omero-server
  mode:
    description:
      - Permissions of a newly created O(path), as an octal string.
    type: str
    default: '0750'
  move_logs:
    description:
      - Move the server logs found in the previous log directory into O(path).
      - C(master.out) and C(master.err) are not moved; C(etc/master.cfg) places them, not C(OMERO_LOGS).
      - Stop OMERO.server first; open logs are refused.
    type: bool
    default: false
notes:
  - Idempotent. With the descriptors already pointing at O(path) and O(path) present, nothing changes.
  - The running server keeps its old log directory until it is restarted (C(omero admin restart)).
  - O(move_logs) moves from the directory the descriptors named before this run, so it only has an effect in the run
    that changes the directory.
  - Run as root, so that the directory can be given to O(user) and open logs of the server are visible.
  - Which files are logs is the rule of M(omero.backup.logs) (C(NAME.log), C(NAME.log.N), their C(.gz) forms; no
    control character in NAME). File names are bytes and are moved as they are; names in RV(moved) that are not
    printable UTF-8, or hold a backslash, are shown escaped (C(\xe9)), with their exact bytes in RV(names_b64).
seealso:
  - module: omero.backup.logs
'''

EXAMPLES = r'''
- name: Keep OMERO.server logs on the log volume
  omero.backup.log_dir:
    path: /var/log/omero
    move_logs: true
  become: true

- name: Show what would change in the grid descriptors
  omero.backup.log_dir:
    path: /var/log/omero
    omerodir: /opt/omero/server/OMERO.server
  check_mode: true
  diff: true
'''

RETURN = r'''
path:
  description: The log directory, absolute.
  returned: always
  type: str
  sample: /var/log/omero
value:
  description: The C(OMERO_LOGS) value in the descriptors.
  returned: always
  type: str
  sample: /var/log/omero/
previous_path:
  description: The log directory the descriptors named before this run.
  returned: always
  type: str
  sample: /opt/omero/server/OMERO.server/var/log
previous_source:
  description: The descriptor RV(previous_path) was read from, or V(default).
  returned: always
  type: str
  sample: etc/grid/default.xml
descriptors:
  description: Descriptors (relative to O(omerodir)) whose C(OMERO_LOGS) was changed, or would be in check mode.
  returned: always
  type: list
  elements: str
  sample: ["etc/templates/grid/default.xml", "etc/grid/default.xml"]
created:
  description: Whether O(path) was (or would be) created.
  returned: always
  type: bool
moved:
  description: Log files moved (or to be moved) into O(path).
  returned: always
  type: list
  elements: str
  sample: ["Blitz-0.log", "Blitz-0.log.1"]
names_b64:
  description: For every name in RV(moved) shown escaped, the escaped form mapped to the base64 of its exact bytes.
  returned: always
  type: dict
  sample: {"caf\\xe9.log": "Y2Fm6S5sb2c="}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.logs.relocate import argument_spec, relocate


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_params(module, relative_to={'path': 'omerodir'})
    run_step(module, relocate, module.params, check_mode=module.check_mode, errors=(OSError, ValueError))


if __name__ == '__main__':
    main()
