#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: logs
short_description: Compress or delete rolled OMERO.server log files
version_added: 0.1.0
description:
  - Compresses (O(state=compressed)) or deletes (O(state=absent)) the log files OMERO.server has rolled over,
    C(NAME.log.1), C(NAME.log.2) and so on, in its log directory.
  - Acts only on regular files directly in the log directory that are rolled logs of the server, C(NAME.log.N)
    (N in ASCII digits, the server's rollover), and, with O(state=absent), on their compressed forms
    C(NAME.log.N.gz) (compressed by hand or by logrotate) and C(NAME.log.<time>.gz) (made by this module). NAME
    holds no slash and no control character. The live C(NAME.log) files, C(master.out), C(master.err), other
    compressions (C(.xz), C(.bz2)) and every other file, including names that only look like rolled logs
    (C(Blitz-0.log.7) followed by a newline, non-ASCII digits), are never touched.
  - Refuses a O(path) inside a C(ManagedRepository) or anywhere in an OMERO repository (a directory holding
    C(.omero/repository)), because import logs there are OMERO database objects and removing one breaks its fileset.
  - A compressed file is named after the time its last line was written, C(NAME.log.20261120T101500Z.gz), because
    the server's own rollover renames C(.1) to C(.2) and so on and would otherwise collide with earlier C(.gz) files.
    It keeps the original's mtime, mode and owner. It is written to a temporary file, fsynced, read back and compared
    with the original, then renamed into place; only then is the original removed, and only if it is still the same
    file (the server may have rolled its logs meanwhile).
  - To move the log directory itself, use M(omero.backup.log_dir).
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - Lists the files that would be compressed or deleted and changes nothing.
  diff_mode:
    details:
      - Shows the rolled files of the log directory before and after.
options:
  path:
    description:
      - The log directory.
      - When not set, the directory named by C(OMERO_LOGS) in O(omerodir)C(/etc/grid/default.xml) (the descriptor the
        running server was started with), else in C(etc/templates/grid/default.xml), else O(omerodir)C(/var/log).
        A relative C(OMERO_LOGS) such as C(var/log/) is relative to O(omerodir).
    type: path
  omerodir:
    description:
      - The OMERO.server directory (C(OMERODIR)), used to find the log directory when O(path) is not set.
    type: path
    default: /opt/omero/server/OMERO.server
  datadir:
    description:
      - The OMERO binary repository (C(omero.data.dir)). A O(path) inside its C(ManagedRepository) is refused, even
        when C(ManagedRepository) is a symbolic link to another place.
    type: path
    default: /OMERO
  state:
    description:
      - V(compressed) gzips each selected rolled file beside itself.
      - V(absent) deletes the selected rolled files, compressed ones included, whoever compressed them
        (C(NAME.log.N.gz) from logrotate or by hand, C(NAME.log.<time>.gz) from this module).
    type: str
    choices: [compressed, absent]
    default: compressed
  keep:
    description:
      - Leave the newest O(keep) rolled files of each log untouched (newest by the time they were last written,
        compressed ones counted too).
    type: int
    default: 0
  older_than:
    description:
      - Only act on rolled files last written longer ago than this duration, for example V(30d), V(8w) or V(1d12h)
        (see the notes on durations; V(1m) is a minute, V(1M) thirty days; a bare number is seconds).
      - Files within the newest O(keep) are left alone whatever their age.
    type: str
notes:
  - Idempotent. A second run with the same options changes nothing, unless the server has rolled its logs in between.
  - A file that changes between the scan and the action (the server rolled its logs) is skipped and reported in
    RV(logs.skipped), never half-processed.
  - Run as the OMERO system user or as root; compressed files keep the original owner.
  - File names are bytes. Names in the results that are not printable UTF-8, or hold a backslash, are shown
    escaped (C(\n), C(\xe9), C(\\)); RV(names_b64) maps each escaped form to the name's exact bytes.
seealso:
  - module: omero.backup.log_dir
'''

EXAMPLES = r'''
- name: Compress rolled logs, leaving the two newest of each log readable
  omero.backup.logs:
    state: compressed
    keep: 2
  become: true

- name: Delete rolled logs (compressed or not) older than 90 days
  omero.backup.logs:
    path: /var/log/omero
    state: absent
    older_than: 90d
  become: true
  register: omero_logs_pruned

- name: Report what was freed
  ansible.builtin.debug:
    msg: "{{ omero_logs_pruned.bytes_freed }} bytes freed in {{ omero_logs_pruned.path }}"
'''

RETURN = r'''
path:
  description: The log directory acted on.
  returned: always
  type: str
  sample: /opt/omero/server/OMERO.server/var/log
path_source:
  description: Where O(path) came from, V(path) when given, else the descriptor read, or V(default).
  returned: always
  type: str
  sample: etc/grid/default.xml
state:
  description: The O(state) applied.
  returned: always
  type: str
  sample: compressed
bytes_freed:
  description:
    - Bytes freed in total. In check mode with O(state=compressed) this is V(null), since it depends on the compression.
  returned: always
  type: int
  sample: 1572864000
logs:
  description: What happened per log, keyed by the live log's name (C(Blitz-0.log)). Only logs with rolled files appear.
  returned: always
  type: dict
  contains:
    files:
      description: Rolled files compressed or deleted (or that would be, in check mode).
      type: list
      elements: str
      sample: ["Blitz-0.log.3", "Blitz-0.log.2"]
    bytes:
      description: Size of RV(logs.files) before the action.
      type: int
    bytes_freed:
      description: Bytes freed for this log; V(null) in check mode with O(state=compressed).
      type: int
    created:
      description:
        - The compressed files now holding RV(logs.files). One with identical content left by an interrupted run is
          reused rather than written again.
      type: list
      elements: str
      sample: ["Blitz-0.log.20261120T101500Z.gz"]
    kept:
      description: Rolled files left as they are (within O(keep), newer than O(older_than), or already compressed).
      type: list
      elements: str
    skipped:
      description: Files that changed between the scan and the action, each with the reason; nothing was lost.
      type: list
      elements: dict
  sample:
    Blitz-0.log:
      files: ["Blitz-0.log.3"]
      bytes: 524288000
      bytes_freed: 471859200
      created: ["Blitz-0.log.20261015T080000Z.gz"]
      kept: ["Blitz-0.log.1", "Blitz-0.log.2"]
      skipped: []
names_b64:
  description:
    - For every file name in RV(logs) that is shown escaped (not printable UTF-8, or holding a backslash), the
      escaped form mapped to the base64 of the name's exact bytes. Empty when every name is plain.
  returned: always
  type: dict
  sample: {"caf\\xe9.log.1": "Y2Fm6S5sb2cuMQ=="}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.logs.housekeeping import argument_spec, housekeeping


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_params(module)
    run_step(module, housekeeping, module.params, check_mode=module.check_mode, errors=(OSError,))


if __name__ == '__main__':
    main()
