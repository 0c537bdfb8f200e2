# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A second process holding one of the collection's locks, as a concurrent run would."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import subprocess
import sys

from helpers.ansible import collections_path

HOLDER = '''
import sys
sys.path.insert(0, sys.argv[3])
from ansible_collections.omero.backup.plugins.module_utils.base.locking import ExclusiveLock
ExclusiveLock(sys.argv[1], sys.argv[2]).acquire()
sys.stdout.write('locked\\n')
sys.stdout.flush()
sys.stdin.read()
'''


def hold_lock(path, purpose):
    """Another process holding the lock file at ``path`` (the collection's own ExclusiveLock) until it is killed."""
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, path, purpose, collections_path()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b'locked'
    return proc
