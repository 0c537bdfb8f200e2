#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: layout_info
short_description: The sources of an OMERO install a backup set must hold, their sizes and problems
version_added: 0.3.0
description:
  - Finds every directory of an OMERO.server install that a backup must hold for a restore to bring the whole
    server back (docs/layout.md) - the data dir; C(omero.managed.dir) when it is outside the data dir; every
    directory a symlink in those points to outside them (an extra volume, C(ManagedRepository/volume-B -> /mnt/b)),
    followed further inside the volumes; the certificates directory of omero-certificates
    (C(omero.glacier2.IceSSL.DefaultDir), default C({omero.data.dir}/certs)) when it is outside the data dir; and
    the extra sources given.
  - Reports each source with its size, and as problems the links whose target lies outside every source (they
    would be restored pointing at nothing) unless under O(exclude), sources that contain each other, and a
    relative or missing C(omero.managed.dir).
  - With O(set_sources) (a backup set's C(sources)), says where each of them goes on this host (through
    O(path_map)) and which do not fit this host's layout (RV(unmatched)), naming each; the links of the data dir
    are then not judged, the set brings its own.
  - The configuration is read from C(<omerodir>/etc/grid/config.xml) (the active profile, or O(profile)), without
    the omero CLI, which would rewrite it.
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.info_module
options:
  datadir:
    description:
      - The data dir; default C(omero.data.dir) of the configuration.
    type: path
  omerodir:
    description:
      - The OMERO.server directory whose C(etc/grid/config.xml) gives C(omero.data.dir), C(omero.managed.dir) and
        C(omero.glacier2.IceSSL.DefaultDir).
    type: path
  profile:
    description:
      - The configuration profile to read; default the active one.
    type: str
  managed_dir:
    description:
      - C(omero.managed.dir), when the configuration does not say (default C(<datadir>/ManagedRepository)).
    type: path
  certs_dir:
    description:
      - The certificates directory, when the configuration does not say (default C(<datadir>/certs)).
    type: path
  extra_sources:
    description:
      - Further directories a set must hold (the roots of in-place imports, for instance).
    type: list
    elements: path
    default: []
  exclude:
    description:
      - Link targets under these paths are left out on purpose (backed up elsewhere); such links are counted, not
        reported as problems.
    type: list
    elements: path
    default: []
  sizes:
    description:
      - Sum the sizes of the files of each source (one walk, which the link scan needs anyway).
    type: bool
    default: true
  set_sources:
    description:
      - The C(sources) of a backup set to restore here; the result says where each goes and which do not fit.
    type: list
    elements: dict
  path_map:
    description:
      - Old path prefix to new one, for a set restored to a host with other paths; the longest matching prefix wins.
    type: dict
    default: {}
  fail_on_problems:
    description:
      - Fail, with the result, when there are problems or unmatched sources.
    type: bool
    default: true
seealso:
  - module: omero.backup.layout_restore
  - module: omero.backup.datadir_backup
'''

EXAMPLES = r'''
- name: Learn the sources a backup set must hold
  omero.backup.layout_info:
    omerodir: /opt/omero/server/OMERO.server
    exclude: [/mnt/instruments]
  register: layout

- name: Refuse a set that does not fit this host, mapping the old volume's place
  omero.backup.layout_info:
    omerodir: /opt/omero/server/OMERO.server
    sizes: false
    set_sources: "{{ set.record.sources }}"
    path_map:
      /mnt/b: /srv/volume-b
'''

RETURN = r'''
datadir:
  description: The data dir.
  returned: always
  type: str
sources:
  description:
    - Every source, the data dir first; each with C(name) (C(datadir), C(managed), C(certs), C(volume-<link>),
      C(extra-<path>)), C(kind), C(path), C(bytes), C(files), C(link) (a volume's link, relative to the data dir)
      and C(key) (the configuration key that names it).
  returned: always
  type: list
  elements: dict
extra_sources:
  description: The sources other than the data dir.
  returned: always
  type: list
  elements: dict
total_bytes:
  description: Bytes in all sources (0 without O(sizes)).
  returned: always
  type: int
links:
  description: Symlinks found (C(total), C(inside) a source, C(volumes) added, C(excluded)) and the first of those C(outside) every source.
  returned: always
  type: dict
covered:
  description:
    - Where C(managed) and C(certs) are, and C(in=datadir) when the data dir already holds them.
    - C(certs.private_keys) lists the key files by name and mode, never their content.
  returned: always
  type: dict
plan:
  description: With O(set_sources), each source of the set (but the data dir) with its C(dest) on this host and whether it was C(mapped).
  returned: when set_sources is given
  type: list
  elements: dict
unmatched:
  description: With O(set_sources), the sources that do not fit, each with C(name), C(path), C(dest) and C(reason).
  returned: when set_sources is given
  type: list
  elements: dict
problems:
  description: What is wrong; empty when nothing is.
  returned: always
  type: list
  elements: str
ok:
  description: No problems.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.layout.info import argument_spec, layout_info


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_params(module)
    run_step(module, layout_info, module.params)


if __name__ == '__main__':
    main()
