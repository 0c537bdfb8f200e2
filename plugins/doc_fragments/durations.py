# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):
    # The one duration grammar (module_utils/base/durations.parse_duration), for every module with a duration option.
    # Notes only: ansible-doc wants a fragment to carry options, hence the empty mapping.
    DOCUMENTATION = r'''
options: {}
notes:
  - "Durations: every duration option of this collection takes one grammar, rdiff-backup's units: a number of seconds
    (V(90)), or numbers with units, summed (V(1d12h)): C(s) seconds, C(m) minutes, C(h) hours, C(d) days, C(w) weeks,
    C(M) months of 30 days, C(y) years of 365 days. Case matters for C(m) and C(M) only: V(1m) is one minute, V(1M)
    thirty days. Other spellings (V(1min), V(2 months), V(1.5h), V(-1d)) are refused, never guessed. A duration
    handed on to rdiff-backup is passed in seconds (C(NNNs)), so the two cannot read it differently."
'''
