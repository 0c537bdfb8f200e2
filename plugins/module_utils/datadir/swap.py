# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Swap a restored tree into place: by one rename beside the data dir, or, when the data dir is a mount point, by
renames of its entries within it. The old content is kept (keep_replaced) or removed through directory
descriptors; either way the swap is whatever engine restored the tree."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import fsync_dir, resolve_owner
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.base.runner import file_timestamp
from ansible_collections.omero.backup.plugins.module_utils.datadir.leftovers import remove_at
from ansible_collections.omero.backup.plugins.module_utils.engines.base import REPLACED_INSIDE_PREFIX, STAGING_PREFIX


def chown_tree(path, owner, group):
    uid, gid = resolve_owner(owner, group)
    for root, dirs, files in os.walk(path):
        os.lchown(root, uid, gid)
        for name in dirs + files:
            full = os.path.join(root, name)
            if os.path.islink(full) or not os.path.isdir(full):
                os.lchown(full, uid, gid)


def swap_sibling(staging, dest, dest_state, keep_replaced, result):
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    old = None
    if dest_state != 'missing':
        old = '%s.replaced-%s' % (dest.rstrip('/'), file_timestamp())
        os.rename(dest, old)
    try:
        os.rename(staging, dest)
    except OSError:
        if old:
            os.rename(old, dest)
        raise
    fsync_dir(parent)
    if old and dest_state == 'empty':
        os.rmdir(old)
    elif old and not keep_replaced:
        _remove_replaced(old, result)
    elif old:
        result['replaced_path'] = old
        result['warnings'].append('the previous %s was kept as %s; delete it once the restore is checked' % (dest, old))
    fsync_dir(parent)


def _remove_replaced(old, result):
    """Delete the old tree (keep_replaced: false); what cannot be removed stays, is named and counts as kept."""
    report = remove_at(os.path.dirname(old), os.path.basename(old))
    if report.errors:
        result['replaced_path'] = old
        result['warnings'].append('the previous tree %s could not be removed completely: %s' % (escape(old), '; '.join(
            '%s: %s' % (escape(rel), why) for rel, why in report.errors[:5])))


def swap_inside(staging, dest, dest_state, keep_replaced, result):
    """Swap by renames within dest (a mount point): old entries into a kept dir, restored entries up."""
    staging_name = os.path.basename(staging)
    old = None
    moved = [name for name in os.listdir(dest) if name != staging_name and not name.startswith(STAGING_PREFIX)]
    if moved:
        old = os.path.join(dest, REPLACED_INSIDE_PREFIX + file_timestamp())
        os.mkdir(old, 0o700)
        for name in moved:
            os.rename(os.path.join(dest, name), os.path.join(old, name))
    for name in os.listdir(staging):
        os.rename(os.path.join(staging, name), os.path.join(dest, name))
    info = os.stat(staging)
    os.chmod(dest, stat.S_IMODE(info.st_mode))
    os.chown(dest, info.st_uid, info.st_gid)
    os.rmdir(staging)
    fsync_dir(dest)
    if old and not keep_replaced:
        _remove_replaced(old, result)
    elif old:
        result['replaced_path'] = old
        result['warnings'].append('the previous content of %s was kept in %s, inside the data dir: move or delete it '
                                  'before the next backup' % (dest, old))
