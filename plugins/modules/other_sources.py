#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: other_sources
short_description: Archive the files beside the OMERO.server configuration that a restore needs
version_added: 0.1.0
description:
  - Archives the other sources the official OMERO backup procedure names (edited grid descriptors and their
    templates, C(lib/scripts), the role-managed C(config/*.omero), certificates) into one C(.tar.gz) at O(dest),
    mode 0600. Paths that do not exist are skipped and reported in RV(missing).
  - The archive is reproducible (members in order, a directory's entries sorted, no time stamp in the gzip
    header), so unchanged sources give the same bytes; an unchanged archive is left alone and reported unchanged.
    A changed one is written beside the old one, synced and renamed over it.
  - Members are named after their absolute paths without the leading C(/), so the archive unpacks with C(-C /).
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
attributes:
  check_mode:
    details:
      - Builds the archive in memory and reports whether it would change; writes nothing.
options:
  paths:
    description:
      - Absolute paths of the files and directories to archive; directories are archived with their contents.
    type: list
    elements: path
    required: true
  dest:
    description:
      - The archive file. Its directory must exist.
    type: path
    required: true
'''

EXAMPLES = r'''
- name: Archive the other sources beside the config backup
  omero.backup.other_sources:
    paths:
      - /opt/omero/server/OMERO.server/etc/grid/default.xml
      - /opt/omero/server/OMERO.server/lib/scripts
      - /opt/omero/server/config
    dest: /OMERO/backup/config/other-sources.tar.gz
  register: other_sources
'''

RETURN = r'''
path:
  description: The archive.
  returned: always
  type: str
  sample: /OMERO/backup/config/other-sources.tar.gz
size:
  description: Size of the archive in bytes (of the one that would be written, in check mode).
  returned: always
  type: int
sha256:
  description: SHA-256 of the archive (of the one that would be written, in check mode).
  returned: always
  type: str
sources:
  description: The members archived, each path without its leading C(/); odd names escaped.
  returned: always
  type: list
  elements: str
  sample: [opt/omero/server/OMERO.server/lib/scripts]
missing:
  description: The paths that did not exist and were skipped; odd names escaped.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.other_sources import archive
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', required=True),
            dest=dict(type='path', required=True),
        ),
        supports_check_mode=True,
    )
    check_params(module)
    run_step(module, archive, module.params, check_mode=module.check_mode, errors=(OSError,))


if __name__ == '__main__':
    main()
