#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: layout_restore
short_description: Restore one source of an OMERO layout (managed.dir elsewhere, a volume, the certificates) and its link
version_added: 0.3.0
description:
  - Restores one backup (O(at)) of a source other than the data dir from its repository O(src) (written by
    M(omero.backup.datadir_backup) with that source as C(src)) into O(dest), through the data dir engine
    (docs/layout.md).
  - The engine writes the backup into a fresh staging directory beside O(dest) (inside it when it is a mount
    point); the engine's listing is compared with the names on disk, and only then the old tree is swapped aside,
    kept as C(<dest>.replaced-<time>) unless O(keep_replaced=false). A populated O(dest) is refused unless
    O(state=replaced). Unlike M(omero.backup.datadir_restore) no C(.omero/repository) is required, the source
    being a plain directory.
  - A marker beside O(dest) (C(.<name>.omero-backup-restored.json), mode 0600) makes a second run with the same
    backup a no-op while the tree is unchanged.
  - With O(link), the symlink O(link_root)/O(link) (default O(datadir)/O(link); restored with the tree that holds it)
    is pointed at O(dest), atomically, when it points elsewhere (the set was restored to other paths with a path map).
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
  - omero.backup.rdiff_ssh
  - omero.backup.durations
options:
  src:
    description:
      - The repository of the source (a local path or C(host::/path)).
    type: str
    required: true
  dest:
    description:
      - Where the source goes on this host (its recorded path, or the one a path map gave it).
    type: path
    required: true
  at:
    description:
      - The backup to restore (the engine's names, e.g. the set's increment time); default the newest.
    type: str
    default: now
  state:
    description:
      - V(present) refuses a populated O(dest); V(replaced) swaps it for the backup.
    type: str
    choices: [present, replaced]
    default: present
  keep_replaced:
    description:
      - Keep the replaced tree beside O(dest).
    type: bool
    default: true
  owner:
    description:
      - Owner of the restored tree; default as stored.
    type: str
  group:
    description:
      - Group of the restored tree; default as stored.
    type: str
  datadir:
    description:
      - The data dir; O(dest) may not lie inside it, and O(link) is relative to it.
    type: path
  link:
    description:
      - The symlink to this source, relative to O(link_root) (default O(datadir)), to point at O(dest).
    type: str
  link_root:
    description:
      - The directory O(link) is relative to when it is not the data dir (the restored C(omero.managed.dir) or
        volume that holds the link).
    type: path
seealso:
  - module: omero.backup.layout_info
  - module: omero.backup.datadir_restore
'''

EXAMPLES = r'''
- name: Restore the volume linked as ManagedRepository/volume-B to its new place and re-point the link
  omero.backup.layout_restore:
    src: backup.example.org::/srv/backup/omero/sources/volume-ManagedRepository_volume-B
    dest: /srv/volume-b
    at: "2026-11-26T08:30:00Z"
    datadir: /OMERO
    link: ManagedRepository/volume-B
'''

RETURN = r'''
src:
  description: The repository.
  returned: always
  type: str
dest:
  description: The real path restored into.
  returned: always
  type: str
increment_time:
  description: The backup restored.
  returned: when the repository answered
  type: str
dest_state:
  description: V(missing), V(empty) or V(populated) before the run.
  returned: when the repository answered
  type: str
files:
  description: Entries restored (or found unchanged).
  returned: success
  type: int
replaced_path:
  description: Where the old tree was kept, or V(null).
  returned: always
  type: str
link:
  description: The link's C(path), and where it pointed C(before) and C(after); V(null) without O(link).
  returned: always
  type: dict
commands:
  description: The engine's command lines.
  returned: always
  type: list
  elements: list
warnings_list:
  description: The warnings, also shown as task warnings.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.layout.restore import argument_spec, restore_source


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_params(module, locations=['src'])
    run_step(module, restore_source, module.params, module_runner(module), check_mode=module.check_mode, keep_warnings=True)


if __name__ == '__main__':
    main()
