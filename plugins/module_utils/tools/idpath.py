# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OMERO's rule from an object id to its place under Files/, Pixels/, Thumbnails/.

The file name is the id; the directories are the id without its last three
digits, cut into groups of three from the most significant, each ``Dir-%03d``.
Integer arithmetic throughout: omero-py's Python copy divides with ``/`` and
puts ids 999001-999999 in the wrong directory. Which names are ids is the
rule of names.py (shared with the Dir-NNN and rolled-log rules).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.omero.backup.plugins.module_utils.base import names

# The largest id whose plain name entry_ids() takes without a per-name check: 18 digits stay below bigint's limit.
_FAST_DIGITS = 18


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
    """The object id a data-dir entry belongs to, or None for names cleanse must keep (names.entry_id: ASCII
    digits without a leading zero, up to PostgreSQL's bigint; ``0997``, ``١٢٣`` and ``12\\n`` are kept)."""
    return names.entry_id(basename)


def entry_ids(entries):
    """entry_id() of many names, for directory walks: the same rule, with a fast path for a directory of plain ids.

    The fast path runs in C: the names joined by "/" (which no name holds) must be ASCII digits, none may
    start with 0 and none be longer than 18 digits; then int() of each is its id. Any other directory goes
    name by name through entry_id(), so both always agree.
    """
    entries = list(entries)
    if entries:
        joined = '/'.join(entries)
        if (joined.isascii() and joined.replace('/', '').isdigit() and '/0' not in '/' + joined
                and min(map(len, entries)) > 0 and max(map(len, entries)) <= _FAST_DIGITS):
            return list(map(int, entries))
    return [names.entry_id(name) for name in entries]
