# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes that are either complete or absent.

Every file the collection produces goes through here: a temporary sibling is
written, fsynced, renamed over the target and the directory fsynced, so a crash
or a full disk leaves the old file (or nothing), never a torn one.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import os
import pwd
import grp
import tempfile

TEMP_PREFIX = '.omero-backup-tmp.'


def temp_sibling(path, suffix=''):
    """A fresh, unused temporary name next to ``path`` (same filesystem, so rename is atomic)."""
    directory, base = os.path.split(os.path.abspath(path))
    handle, name = tempfile.mkstemp(prefix=TEMP_PREFIX + base + '.', suffix=suffix, dir=directory)
    os.close(handle)
    return name


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path):
    """fsync every file and directory below ``path`` (directory-format dumps, restored trees)."""
    for root, dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


def resolve_owner(owner=None, group=None):
    """(uid, gid) for names or numbers; -1 leaves that id unchanged."""
    uid = gid = -1
    if owner not in (None, ''):
        uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
    if group not in (None, ''):
        gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


def apply_owner(path, owner=None, group=None, follow=True):
    uid, gid = resolve_owner(owner, group)
    if uid != -1 or gid != -1:
        if follow:
            os.chown(path, uid, gid)
        else:
            os.lchown(path, uid, gid)


@contextlib.contextmanager
def atomic_open(path, mode=0o600, owner=None, group=None):
    """Yield a binary file; on a clean exit it replaces ``path`` atomically.

    Ownership and mode are set on the temporary file before the rename, so the
    target is never visible with looser permissions than asked for.
    """
    tmp = temp_sibling(path)
    try:
        os.chmod(tmp, mode)
        apply_owner(tmp, owner, group)
        with open(tmp, 'wb') as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
        tmp = None
        fsync_dir(os.path.dirname(os.path.abspath(path)))
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write(path, data, mode=0o600, owner=None, group=None):
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    with atomic_open(path, mode=mode, owner=owner, group=group) as handle:
        handle.write(data)


def publish(tmp_path, final_path):
    """Rename a finished temporary file or directory into place and make the rename durable."""
    if os.path.isdir(tmp_path):
        fsync_tree(tmp_path)
    else:
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.rename(tmp_path, final_path)
    fsync_dir(os.path.dirname(os.path.abspath(final_path)))


def ensure_private_dir(path, mode=0o700, owner=None, group=None):
    """Create ``path`` (and parents) if missing; returns True when it was created."""
    if os.path.isdir(path):
        return False
    os.makedirs(path, mode)
    os.chmod(path, mode)
    apply_owner(path, owner, group)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return True
