#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: config_save
short_description: Back up an OMERO.server configuration profile, passwords included
version_added: 0.1.0
description:
  - Runs the real C(omero config get --show-password) as the OMERO system user and writes its output to O(dest),
    mode 0600, atomically. Unlike C(omero config get > file) (the official backup page), the saved file keeps the
    real database password, so C(omero.backup.config_load) gives back a working server.
  - Also saves the raw C(etc/grid/config.xml), every profile of it, as C(<dest>.xml), and a manifest
    C(<dest>.manifest.json) recording the OMERO version (C(omero version)), the profile, the key count and the
    sha256 of both files. The manifest is marked complete only after both files are on disk.
  - Refuses to save a profile in which a password key holds the mask C(********) itself, as such a backup restores a broken server.
  - Refuses, naming the keys, values that cannot come back through C(omero config load) (line breaks, trailing
    blanks, a trailing backslash), unless O(rely_on_config_xml=true).
  - The parent directory of O(dest) is created, mode 0700, when missing.
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
attributes:
  check_mode:
    details:
      - Reads the profile and reports whether the backup would change; writes nothing.
  diff_mode:
    details:
      - Shows the saved C(key=value) lines before and after, with every password value masked.
options:
  dest:
    description:
      - The file to write the profile to. C(<dest>.xml) and C(<dest>.manifest.json) are written beside it.
    type: path
    default: /OMERO/backup/omero.config
  rely_on_config_xml:
    description:
      - Save even when some values cannot round-trip through C(omero config load). Those keys are left out of
        O(dest), listed in RV(unloadable_keys) and in the manifest, and survive only in the C(config.xml) copy.
    type: bool
    default: false
  omerodir:
    description:
      - The OMERO.server directory (C(OMERODIR)) whose C(etc/grid/config.xml) is saved.
    type: path
    default: /opt/omero/server/OMERO.server
  omero_command:
    description:
      - The C(omero) executable; default C(<omerodir>/bin/omero).
    type: path
  user:
    description:
      - The OMERO system user that runs C(omero) (C(omero) refuses to run as root).
    type: str
    default: omero-server
  profile:
    description:
      - The configuration profile to save (C(OMERO_CONFIG)); default the active one.
    type: str
  owner:
    description:
      - Owner of the backup files; default the user the module runs as.
    type: str
  group:
    description:
      - Group of the backup files.
    type: str
notes:
  - Every C(omero) call, C(config get) included, rewrites C(config.xml) with the same properties and a new
    "generated at" time stamp. Check mode therefore changes no property, but the file's bytes do change;
    comparisons of the C(config.xml) copy ignore that time stamp.
  - Idempotent, a second run with an unchanged profile reports RV(ignore:changed=false) and writes nothing.
seealso:
  - module: omero.backup.config_load
'''

EXAMPLES = r'''
- name: Save the OMERO.server configuration before changing it
  omero.backup.config_save:
    dest: /OMERO/backup/omero.config
  become: true

- name: Save a named profile as a dated file
  omero.backup.config_save:
    profile: default
    dest: "/mnt/backup/omero-config/{{ ansible_date_time.date }}.config"
    owner: root
    group: root
  become: true
'''

RETURN = r'''
dest:
  description: The saved C(key=value) file.
  returned: always
  type: str
  sample: /OMERO/backup/omero.config
config_xml_dest:
  description: The copy of C(etc/grid/config.xml).
  returned: always
  type: str
  sample: /OMERO/backup/omero.config.xml
manifest:
  description: The manifest written beside O(dest).
  returned: always
  type: str
  sample: /OMERO/backup/omero.config.manifest.json
profile:
  description: The profile named by O(profile), V(null) for the active one.
  returned: always
  type: str
key_count:
  description: Number of keys saved in O(dest).
  returned: always
  type: int
  sample: 12
sha256:
  description: sha256 of the content of O(dest).
  returned: always
  type: str
size:
  description: Size of O(dest) in bytes.
  returned: always
  type: int
unloadable_keys:
  description: Keys left out of O(dest) because C(omero config load) cannot read their values back.
  returned: always
  type: list
  elements: str
omero_version:
  description: The OMERO.server version when C(omero version) reports it, else the OMERO.py version.
  returned: always
  type: str
  sample: 5.6.9
omero_server_version:
  description: The OMERO.server version reported by C(omero version), V(null) when it reports none.
  returned: always
  type: str
omero_py_version:
  description: The OMERO.py version of the C(omero) CLI.
  returned: always
  type: str
  sample: 5.23.0
keys_added:
  description: Keys in the profile that the previous backup at O(dest) did not have.
  returned: always
  type: list
  elements: str
keys_removed:
  description: Keys of the previous backup no longer in the profile.
  returned: always
  type: list
  elements: str
keys_changed:
  description: Keys whose value differs from the previous backup (names only, never values).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli, omero_cli_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.config.cli import OmeroConfig
from ansible_collections.omero.backup.plugins.module_utils.config.props import DEFAULT_DEST
from ansible_collections.omero.backup.plugins.module_utils.config.save import save
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params


def main():
    argument_spec = omero_cli_argument_spec()
    argument_spec.update(
        dest=dict(type='path', default=DEFAULT_DEST),
        rely_on_config_xml=dict(type='bool', default=False),
        owner=dict(type='str'),
        group=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module)
    params = module.params
    cli = OmeroCli(module_runner(module), omerodir=params['omerodir'], omero_command=params['omero_command'],
                   user=params['user'], profile=params['profile'])
    run_step(module, save, OmeroConfig(cli), params['dest'], rely_on_config_xml=params['rely_on_config_xml'],
             check_mode=module.check_mode, owner=params['owner'], group=params['group'], errors=(OSError, KeyError))


if __name__ == '__main__':
    main()
