# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Work below a directory through file descriptors, never through a path a local user can swap:
the one dir-fd helper (walk, open, link, publish, and remove a whole tree).

A path such as ``/OMERO/Pixels/Dir-123/123456`` is resolved again by the
kernel at every call: if the owner of ``/OMERO`` replaces ``Dir-123`` by a
symlink between two calls, the second call lands wherever the link points.
Here each directory is opened once, relative to its parent's descriptor, with
``O_NOFOLLOW | O_DIRECTORY``, and its identity (``st_dev``, ``st_ino``) is
compared with the one recorded when it was first seen; every unlink, link,
mkdir and open then names a single component relative to that descriptor.

The invariant: no call below a ``DirChain``'s root follows a symlink, and no
call acts in a directory whose identity differs from the recorded one.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import stat

O_DIR = os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0)
O_DIR_NOFOLLOW = O_DIR | os.O_NOFOLLOW
# A file opened for reading below an untrusted directory: no symlink, and no
# blocking open of a FIFO someone left there.
O_READ_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
TEMP_PREFIX = '.omero-backup-tmp.'


class DirChanged(OSError):
    """A directory is no longer the one recorded: a symlink now, gone, or another directory."""

    def __init__(self, relpath, why):
        super(DirChanged, self).__init__(errno.ESTALE, why, relpath)
        self.relpath = relpath
        self.why = why


def identity(info):
    return (info.st_dev, info.st_ino)


def open_dir(name, dir_fd=None, follow=False):
    """A descriptor of directory ``name``; with follow=False a symlink there is refused (ELOOP/ENOTDIR)."""
    return os.open(name, O_DIR if follow else O_DIR_NOFOLLOW, dir_fd=dir_fd)


class LinkRefused(OSError):
    """A symlink that may not be followed: its owner is neither root nor the owner of the directory it leads to."""

    def __init__(self, name, why):
        super(LinkRefused, self).__init__(errno.EPERM, why, name)
        self.why = why


def open_top_dir(parent_fd, name):
    """Open ``name``, a directory or a symlink to one that may be followed; None when it does not exist.

    Pixels/, Files/ and Thumbnails/ may be symlinks to other volumes. The owner
    of the data dir can also make them point anywhere, so a symlink is followed
    only when root made it, or when the directory it leads to has the link's
    owner (who can then change that directory without us): the rule of
    fs.protected_symlinks. The link is checked to be the same (inode) after
    the open, so the open followed the link that was checked; a directory is
    opened without following anything.
    """
    try:
        before = os.lstat(name, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    if not stat.S_ISLNK(before.st_mode):
        try:
            return open_dir(name, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
    try:
        fd = open_dir(name, dir_fd=parent_fd, follow=True)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise
    try:
        after = lstat_at(parent_fd, name)
        target = os.fstat(fd)
        if after is None or identity(after) != identity(before) or after.st_ctime_ns != before.st_ctime_ns:
            raise LinkRefused(name, 'was replaced while it was opened')
        if before.st_uid not in (0, target.st_uid):
            raise LinkRefused(name, 'is a symlink of uid %d to a directory of uid %d; only root may link there'
                              % (before.st_uid, target.st_uid))
    except Exception:
        os.close(fd)
        raise
    return fd


def split_relpath(relpath):
    """('Pixels/Dir-001', '1234') for 'Pixels/Dir-001/1234'; ('', name) for a name at the root."""
    if '/' in relpath:
        return tuple(relpath.rsplit('/', 1))
    return '', relpath


class DirChain(object):
    """Descriptors of the directories below ``root_fd``, opened one component at a time and checked.

    ``expected`` maps a relative directory path ('Pixels', 'Pixels/Dir-001')
    to the identity recorded when it was walked; a path missing there is
    opened without a check only when ``require_known`` is false. The first
    component may be followed when ``follow_first`` (Pixels/, Files/,
    Thumbnails/ may be symlinks to other volumes; their identity is still
    checked, and a symlink is followed only under open_top_dir()'s rule). The chain keeps the descriptors of the last directory opened
    and its ancestors, so a walk-ordered list of files costs one open per
    directory; a directory renamed while the chain holds it open stays the
    one walked (the descriptor follows the inode, not the name). Directories
    marked dirty are fsynced when the chain leaves them.
    """

    def __init__(self, root_fd, expected=None, follow_first=False, require_known=True):
        self.root_fd = root_fd
        self.expected = expected if expected is not None else {}
        self.follow_first = follow_first
        self.require_known = require_known
        self._stack = []  # [(relpath, fd)], each the child of the one before
        self._dirty = set()

    def _pop(self):
        relpath, fd = self._stack.pop()
        try:
            if relpath in self._dirty:
                self._dirty.discard(relpath)
                os.fsync(fd)
        finally:
            os.close(fd)

    def open(self, reldir, create=None):
        """The descriptor of ``reldir`` ('' is the root); raises DirChanged.

        ``create(parent_fd, name, relpath)`` makes a missing component (a
        mkdir); the directory it made is then opened like any other, without
        following a symlink, and trusted without a recorded identity.
        """
        if reldir == '':
            while self._stack:
                self._pop()
            return self.root_fd
        parts = reldir.split('/')
        keep = 0
        while keep < len(self._stack) and keep < len(parts) and self._stack[keep][0] == '/'.join(parts[:keep + 1]):
            keep += 1
        while len(self._stack) > keep:
            self._pop()
        for index in range(keep, len(parts)):
            relpath = '/'.join(parts[:index + 1])
            parent = self._stack[-1][1] if self._stack else self.root_fd
            created = False
            try:
                if self.follow_first and index == 0:
                    fd = open_top_dir(parent, parts[index])
                    if fd is None:
                        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), relpath)
                else:
                    fd = open_dir(parts[index], dir_fd=parent)
            except LinkRefused as exc:
                raise DirChanged(relpath, exc.why)
            except OSError as exc:
                if exc.errno == errno.ENOENT and create is not None:
                    create(parent, parts[index], relpath)
                    created = True
                elif exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise DirChanged(relpath, 'is no longer a directory (a symlink or a file now)')
                elif exc.errno == errno.ENOENT:
                    raise DirChanged(relpath, 'is gone')
                else:
                    raise
            if created:
                fd = open_dir(parts[index], dir_fd=parent)
            try:
                found = identity(os.fstat(fd))
                wanted = None if created else self.expected.get(relpath)
                if wanted is None and self.require_known and not created:
                    raise DirChanged(relpath, 'was not seen by the walk')
                if wanted is not None and found != tuple(wanted[:2]):
                    raise DirChanged(relpath, 'is another directory than the one walked (device/inode %d/%d, walked %d/%d)'
                                     % (found[0], found[1], wanted[0], wanted[1]))
            except Exception:
                os.close(fd)
                raise
            self._stack.append((relpath, fd))
        return self._stack[-1][1]

    def mark_dirty(self, reldir):
        self._dirty.add(reldir)

    def close(self):
        while self._stack:
            self._pop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def lstat_at(dir_fd, name):
    """lstat of ``name`` in ``dir_fd``, None when it does not exist."""
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def temp_name():
    """A fresh name for a temporary entry; created with O_EXCL, so a clash fails instead of reusing."""
    return TEMP_PREFIX + os.urandom(8).hex()


def link_no_replace(src_dir_fd, src, dst_dir_fd, dst):
    """Hard-link ``src`` as ``dst`` without following a symlink; EEXIST when ``dst`` exists (never overwritten)."""
    os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)


def publish_no_replace(dir_fd, tmp, final):
    """Give the finished temporary entry ``tmp`` its final name in the same directory, never replacing one.

    link + unlink fails with EEXIST where rename would overwrite. Filesystems
    without hard links fall back to a checked rename: the caller holds the
    lock that keeps other writers of this tree out.
    """
    try:
        link_no_replace(dir_fd, tmp, dir_fd, final)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if lstat_at(dir_fd, final) is not None:
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), final)
        os.rename(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return
    os.unlink(tmp, dir_fd=dir_fd)


def is_regular_or_link(info):
    return stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)


# Removing a tree.
#
# The invariant of remove_tree_at: every unlink and rmdir names one component relative to a
# directory descriptor opened with ``O_NOFOLLOW | O_DIRECTORY``, whose identity
# (device, inode) was checked against the entry seen in its parent. A directory
# replaced by a symlink between the look and the open is refused (ELOOP or
# ENOTDIR), never followed, and nothing outside the tree is ever touched; the
# link itself is removed like any file. The walk stays on the tree's filesystem:
# a mount point inside it is left alone and reported.


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
    return os.open(path, O_DIR_NOFOLLOW)


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
                _leave_dir(stack, parent_fd, name, report)
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


def _leave_dir(stack, parent_fd, name, report):
    """Pop the emptied directory on top of ``stack`` and remove it from its parent."""
    fd, relpath, _entries = stack.pop()
    os.close(fd)
    parent = stack[-1][0] if stack else parent_fd
    try:
        os.rmdir(os.path.basename(relpath) if stack else name, dir_fd=parent)
        report.dirs += 1
    except OSError as exc:
        report.errors.append((relpath, _reason(exc)))


def _open_checked(parent_fd, name, seen):
    fd = os.open(name, O_DIR_NOFOLLOW, dir_fd=parent_fd)
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
