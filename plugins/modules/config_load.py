#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: config_load
short_description: Restore an OMERO.server configuration profile saved by config_save
version_added: 0.1.0
description:
  - Loads a file saved by C(omero.backup.config_save) into the active (or named) profile with the real C(omero)
    CLI, run as the OMERO system user. The values reach C(omero) on standard input, as C(config set) commands of one
    C(omero load) process, never on its command line, so O(src) may stay readable by root only.
  - O(mode=merge) has the semantics of C(omero config load), new keys are added and a key that already holds
    a different value fails the task, naming the keys, with nothing written.
    O(mode=replace) makes the profile exactly equal to the file. Every saved key is set first and the extra keys
    are removed last, so the profile is never empty on the way.
  - The profile is read back after the load and compared with the file, so a load that did not take fails.
  - A freshly installed OMERO.server has no C(etc/grid/config.xml) until its first C(omero config) command. That is
    an empty profile, and the load creates the file (and C(etc/grid/)) as O(user), as the CLI does; in check mode
    nothing is created. The task fails when O(user) could not create it, and when O(omerodir) does not exist.
  - Refuses a file in which a password key holds the mask C(********) (a plain C(omero config get) backup).
  - Refuses when the OMERO version recorded in the manifest beside O(src) differs from the installed one, when that
    manifest is missing or incomplete, or when O(src) no longer matches its sha256 there, unless O(force=true).
  - A concurrent C(omero config) writer holding C(config.xml.lock) fails the task with "config is locked".
  - On hosts set up with the C(ome.omero_server) role, which rebuilds the profile from
    C(/opt/omero/server/config/*.omero) at every start, O(managed_config_dir) makes the restore survive a restart.
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
attributes:
  check_mode:
    details:
      - Reports the keys that would be added, removed or changed; changes nothing.
  diff_mode:
    details:
      - Shows the profile before and after as C(key=value) lines, password values masked and marked when changed.
options:
  src:
    description:
      - The file saved by C(omero.backup.config_save); its manifest C(<src>.manifest.json) is read beside it.
    type: path
    required: true
  mode:
    description:
      - V(merge) adds the saved keys and fails on a key that already has a different value.
      - V(replace) makes the profile equal to the file, keys not in the file are removed.
    type: str
    choices: [merge, replace]
    default: merge
  force:
    description:
      - Load even when the manifest is missing or incomplete, when O(src) does not match it, or when the recorded
        OMERO version differs from the installed one. A masked file is refused even then.
    type: bool
    default: false
  managed_config_dir:
    description:
      - The C(ome.omero_server) role's configuration directory, usually C(/opt/omero/server/config).
      - When set, the saved keys are also written there as C(config set) lines into O(managed_config_file), so the
        role's reload at the next start restores them instead of undoing the load.
      - The file is mode 0640, group of O(user), so the service reads it but cannot change it, and nobody else
        reads its passwords.
    type: path
  managed_config_file:
    description:
      - File name inside O(managed_config_dir). The role loads C(*.omero) files in name order, and the default name sorts
        after the role's own C(00-omero-server.omero), so the restored values win.
    type: str
    default: 99-omero-backup-restored.omero
  omerodir:
    description:
      - The OMERO.server directory (C(OMERODIR)) whose configuration is loaded.
    type: path
    default: /opt/omero/server/OMERO.server
  omero_command:
    description:
      - The C(omero) executable; default C(<omerodir>/bin/omero).
    type: path
  user:
    description:
      - The OMERO system user that runs C(omero) (C(omero) refuses to run as root, and C(config.xml) must stay its own).
    type: str
    default: omero-server
  profile:
    description:
      - The configuration profile to load into (C(OMERO_CONFIG)); default the active one.
    type: str
notes:
  - Idempotent, when the profile already equals the result of the load, and the managed file is up to date,
    the task reports RV(ignore:changed=false) and runs no write.
  - Every C(omero) call, C(config get) included, rewrites C(config.xml) with the same properties and a new time stamp.
  - Keys set by the role's own C(*.omero) files but absent from O(src) come back at the role's next start even
    after O(mode=replace).
seealso:
  - module: omero.backup.config_save
'''

EXAMPLES = r'''
- name: Restore the configuration into a fresh OMERO.server of the same version
  omero.backup.config_load:
    src: /OMERO/backup/omero.config
    mode: replace
  become: true

- name: Restore on a host managed by the ome.omero_server role, so the next start keeps it
  omero.backup.config_load:
    src: /OMERO/backup/omero.config
    mode: replace
    managed_config_dir: /opt/omero/server/config
  become: true
'''

RETURN = r'''
src:
  description: The file loaded.
  returned: always
  type: str
mode:
  description: The O(mode) used.
  returned: always
  type: str
  sample: replace
profile:
  description: The profile named by O(profile), V(null) for the active one.
  returned: always
  type: str
key_count:
  description: Number of keys in the profile after the load.
  returned: always
  type: int
keys_added:
  description: Keys the load adds to the profile.
  returned: always
  type: list
  elements: str
keys_removed:
  description: Keys the load removes (O(mode=replace) only).
  returned: always
  type: list
  elements: str
keys_changed:
  description: Keys whose value the load changes (names only, never values).
  returned: always
  type: list
  elements: str
omero_version:
  description: The installed OMERO.server version, or the OMERO.py version when the server's is not known.
  returned: always
  type: str
backup_omero_version:
  description: The version recorded in the manifest of O(src), V(null) without a manifest.
  returned: always
  type: str
msg:
  description: Says that the settings were also written to O(managed_config_dir) and will survive the role's next start.
  returned: when the file in O(managed_config_dir) was (or in check mode would be) written
  type: str
managed_config:
  description: The file written for the C(ome.omero_server) role, V(null) without O(managed_config_dir).
  returned: always
  type: dict
  contains:
    path:
      description: Path of the file.
      type: str
      sample: /opt/omero/server/config/99-omero-backup-restored.omero
    changed:
      description: Whether the file was (or in check mode would be) written.
      type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli, omero_cli_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.config.cli import OmeroConfig
from ansible_collections.omero.backup.plugins.module_utils.config.load import load
from ansible_collections.omero.backup.plugins.module_utils.config.props import MANAGED_CONFIG_FILE
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params


def main():
    argument_spec = omero_cli_argument_spec()
    argument_spec.update(
        src=dict(type='path', required=True),
        mode=dict(type='str', choices=['merge', 'replace'], default='merge'),
        force=dict(type='bool', default=False),
        managed_config_dir=dict(type='path'),
        managed_config_file=dict(type='str', default=MANAGED_CONFIG_FILE),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module)
    run_step(module, _load, module.params, module_runner(module), module.check_mode, errors=(OSError, KeyError))


def _load(params, runner, check_mode):
    if '/' in params['managed_config_file'] or not params['managed_config_file'].endswith('.omero'):
        raise OmeroBackupError('managed_config_file must be a plain file name ending in .omero, not %r' % params['managed_config_file'])
    cli = OmeroCli(runner, omerodir=params['omerodir'], omero_command=params['omero_command'],
                   user=params['user'], profile=params['profile'])
    result = load(OmeroConfig(cli), params['src'], mode=params['mode'], force=params['force'],
                  managed_config_dir=params['managed_config_dir'], managed_config_file=params['managed_config_file'],
                  check_mode=check_mode)
    if result['managed_config'] and result['managed_config']['changed']:
        result['msg'] = ('%s %s so that the ome.omero_server role keeps these settings at its next start'
                         % ('would write' if check_mode else 'wrote', result['managed_config']['path']))
    return result


if __name__ == '__main__':
    main()
