# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OMERO's rule from an object id to its place under Files/, Pixels/, Thumbnails/.

The file name is the id; the directories are the id without its last three
digits, cut into groups of three from the most significant, each ``Dir-%03d``.
Integer arithmetic throughout: omero-py's Python copy divides with ``/`` and
puts ids 999001-999999 in the wrong directory.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# <id>, <id>_pyramid, .<id>_pyramid.pyr_lock, .<id>_pyramid<anything>.tmp
_ENTRY_NAME = re.compile(r'^(?:(\d+)(?:_pyramid)?|\.(\d+)_pyramid\.pyr_lock|\.(\d+)_pyramid.*\.tmp)\Z')


def id_to_dirs(object_id):
    object_id = int(object_id)
    if object_id < 0:
        raise ValueError('OMERO ids are not negative: %d' % object_id)
    remaining = object_id // 1000
    dirs = []
    while remaining > 0:
        dirs.append('Dir-%03d' % (remaining % 1000))
        remaining //= 1000
    dirs.reverse()
    return dirs


def id_to_relpath(object_id):
    return '/'.join(id_to_dirs(object_id) + [str(int(object_id))])


def entry_id(basename):
    """The object id a data-dir entry belongs to, or None for names cleanse must keep."""
    match = _ENTRY_NAME.match(basename)
    if not match:
        return None
    return int(next(group for group in match.groups() if group is not None))


def entry_ids(names):
    """entry_id() of many names, for directory walks: the same rule, with a fast path for the plain ``<id>`` form.

    str.isdecimal() is exactly the regex's ``\\d`` (Unicode category Nd); any
    other name goes through entry_id(), so both always agree.
    """
    if all(map(str.isdecimal, names)):
        # The common directory, ids only: both passes run in C. isdecimal() first,
        # since int() alone would also take ' 12', '+5' and '1_000'.
        return list(map(int, names))
    return [int(name) if name.isdecimal() else entry_id(name) for name in names]
