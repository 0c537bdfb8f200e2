# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots of a directory tree, to compare a restored tree with the original one."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import stat


def entry_content(path, info):
    """What an entry holds: a link's target, a regular file's sha256, None for anything else."""
    if stat.S_ISLNK(info.st_mode):
        return os.readlink(path)
    if stat.S_ISREG(info.st_mode):
        with open(path, 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    return None


def snapshot(root, skip=()):
    """relpath -> (type, size, sha256 or link target, mode, uid, gid) of every entry below root.

    skip: relative paths left out with everything below them.
    """
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            relpath = os.path.normpath(os.path.join(rel_dir, name))
            if any(relpath == s or relpath.startswith(s + '/') for s in skip):
                continue
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            entries[relpath] = (stat.S_IFMT(info.st_mode), info.st_size if stat.S_ISREG(info.st_mode) else None,
                                entry_content(path, info), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
    return entries
