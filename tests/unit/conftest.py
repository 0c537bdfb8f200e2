# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.omero.backup`` importable when pytest runs from a plain checkout.

Under ansible-test the collection already sits in an ansible_collections tree;
a plain `pytest tests/unit` gets a throw-away tree with a symlink to the checkout.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_root():
    parts = REPO.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        return os.sep.join(parts[:-3])
    root = tempfile.mkdtemp(prefix='omero-backup-units-')
    os.makedirs(os.path.join(root, 'ansible_collections', 'omero'))
    os.symlink(REPO, os.path.join(root, 'ansible_collections', 'omero', 'backup'))
    return root


_root = _collection_root()
if _root not in sys.path:
    sys.path.insert(0, _root)
