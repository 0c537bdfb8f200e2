# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove a tree without following a symlink anyone could swap in.

The invariant: every unlink and rmdir names one component relative to a
directory descriptor opened with ``O_NOFOLLOW | O_DIRECTORY``, whose identity
(device, inode) was checked against the entry seen in its parent. A directory
replaced by a symlink between the look and the open is refused (ELOOP or
ENOTDIR), never followed, and nothing outside the tree is ever touched; the
link itself is removed like any file. The walk stays on the tree's filesystem:
a mount point inside it is left alone and reported.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import stat

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)


class RemoveReport(object):
    """What a removal did: ``files`` and ``dirs`` removed, ``bytes`` of the regular files, ``errors`` as
    (path relative to the tree's parent, reason) for what stayed."""

    def __init__(self):
        self.files = 0
        self.dirs = 0
        self.bytes = 0
        self.errors = []

    @property
    def complete(self):
        return not self.errors


def open_dir_nofollow(path):
    """A descriptor of the directory ``path``; its last component must not be a symlink."""
    return os.open(path, _O_DIR)


def remove_tree_at(parent_fd, name, report=None):
    """Remove ``name`` (a file, a symlink or a whole directory tree) inside the directory ``parent_fd``.

    Returns a RemoveReport; entries that could not be removed are listed in its errors, the rest is gone.
    """
    report = report if report is not None else RemoveReport()
    try:
        top = os.lstat(name, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            report.errors.append((name, exc.strerror))
        return report
    if not stat.S_ISDIR(top.st_mode):
        _unlink(parent_fd, name, top, name, report)
        return report
    device = top.st_dev
    # Depth first with an explicit stack (no recursion limit on deep trees):
    # each frame is (fd, relpath, entries left, identity); a directory is removed once it is empty.
    try:
        fd = _open_checked(parent_fd, name, top)
    except OSError as exc:
        report.errors.append((name, _reason(exc)))
        return report
    stack = [(fd, name, None)]
    try:
        while stack:
            fd, relpath, entries = stack[-1]
            if entries is None:
                entries = sorted(os.listdir(fd))
                stack[-1] = (fd, relpath, entries)
            if not entries:
                stack.pop()
                os.close(fd)
                parent = stack[-1][0] if stack else parent_fd
                try:
                    os.rmdir(os.path.basename(relpath) if stack else name, dir_fd=parent)
                    report.dirs += 1
                except OSError as exc:
                    report.errors.append((relpath, _reason(exc)))
                continue
            child = entries.pop()
            child_rel = relpath + '/' + child
            try:
                info = os.lstat(child, dir_fd=fd)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    report.errors.append((child_rel, _reason(exc)))
                continue
            if not stat.S_ISDIR(info.st_mode):
                _unlink(fd, child, info, child_rel, report)
                continue
            if info.st_dev != device:
                report.errors.append((child_rel, 'a mount point: another filesystem is not removed'))
                continue
            try:
                stack.append((_open_checked(fd, child, info), child_rel, None))
            except OSError as exc:
                report.errors.append((child_rel, _reason(exc)))
    finally:
        for fd, relpath, entries in stack:
            os.close(fd)
    return report


def _open_checked(parent_fd, name, seen):
    fd = os.open(name, _O_DIR, dir_fd=parent_fd)
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        raise OSError(errno.ESTALE, 'replaced by another directory while being removed')
    return fd


def _unlink(dir_fd, name, info, relpath, report):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            report.errors.append((relpath, _reason(exc)))
        return
    report.files += 1
    if stat.S_ISREG(info.st_mode):
        report.bytes += info.st_size


def _reason(exc):
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return 'replaced by a symlink or a file while being removed; not followed'
    return exc.strerror or str(exc)
