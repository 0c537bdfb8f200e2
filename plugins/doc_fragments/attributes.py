# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):
    # Shared by every module of the collection: its author, the attribute descriptions and the path rule. A module adds
    # its support levels (one of the variants below, or its own) and, where it has something to say, the details.
    DOCUMENTATION = r'''
author:
  - omero.backup contributors (@ome)
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
notes:
  - Every path option takes an absolute path (a repository also C(host::/absolute/path)) unless its description says
    relative to what; an empty or relative path is refused before anything runs, since it would be resolved against
    the module's working directory (the playbook's directory over the local connection).
'''

    # For modules that only read.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
'''

    # Modules that change state, support check mode fully and show a diff.
    DIFF_FULL = r'''
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
'''

    # Modules that change state, support check mode fully and have no diff to show.
    DIFF_NONE = r'''
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
'''
