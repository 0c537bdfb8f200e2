# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cleanse quarantine: orphans moved aside with everything needed to put them back exactly.

Layout of a quarantine directory::

    QUARANTINE/.omero-cleanse-journal      JSON lines, 0600, one record each
    QUARANTINE/Pixels/Dir-001/1234         the orphan, under its data dir path

A file is complete in the quarantine when it sits at its final name *and*
its journal record is there (the completion marker) with the same size. The
order that makes this true after a crash or a full disk at any point:

1. same filesystem: hard-link the original into the quarantine (no copy can
   be torn); other filesystem: copy to a temporary name, fsync, check size
   and sha256, set owner, mode and times, and only then link the temporary
   copy to its final name (never replacing anything);
2. fsync the quarantine directory, append the record to the journal, fsync it;
3. only then unlink the original, through the descriptor of its directory.

A failure before 3 (ENOSPC included) removes what 1 made and leaves the
original where it was. Every quarantine directory made by a run gets the
owner, mode and times its data dir directory had when it was walked, and the
journal records them, so the undo (``restore()``) rebuilds the data dir tree
with the same owners, modes and mtimes, refusing partial copies and never
overwriting a file in the data dir.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import errno
import hashlib
import json
import os
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import (DirChain, identity, link_no_replace, lstat_at, O_READ_NOFOLLOW, open_dir,
                                                                              publish_no_replace, temp_name)
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name
from ansible_collections.omero.backup.plugins.module_utils.base.runner import iso_time

JOURNAL = '.omero-cleanse-journal'
CHUNK = 1024 * 1024
# Errors of os.link that mean "no hard link here", not "something is wrong": copy instead.
NO_LINK = (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS)


def b64(relpath):
    return base64.b64encode(os.fsencode(relpath)).decode('ascii')


def unb64(text):
    return os.fsdecode(base64.b64decode(text.encode('ascii')))


def dir_record(info):
    """What the walk keeps of a directory: identity, owner, mode and times."""
    return (info.st_dev, info.st_ino, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_atime_ns,
            info.st_mtime_ns)


def set_times(fd_or_name, atime_ns, mtime_ns, dir_fd=None, follow=True):
    if dir_fd is None:
        os.utime(fd_or_name, ns=(atime_ns, mtime_ns))
    else:
        os.utime(fd_or_name, ns=(atime_ns, mtime_ns), dir_fd=dir_fd, follow_symlinks=follow)


def set_owner_mode(fd, uid, gid, mode):
    # chown first: it clears set-id bits that chmod then sets again.
    if os.geteuid() == 0:
        os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)


def _copy_fd(src, dst):
    """(bytes copied, sha256 hex) of ``src`` into ``dst``."""
    digest = hashlib.sha256()
    copied = 0
    while True:
        block = os.read(src, CHUNK)
        if not block:
            break
        view = memoryview(block)
        while view:
            written = os.write(dst, view)
            view = view[written:]
        digest.update(block)
        copied += len(block)
    return copied, digest.hexdigest()


def _sha256_fd(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    digest = hashlib.sha256()
    while True:
        block = os.read(fd, CHUNK)
        if not block:
            break
        digest.update(block)
    return digest.hexdigest()


def copy_entry(src_dir_fd, name, dst_dir_fd, owner=None, expected_sha256=None):
    """Copy file or symlink ``name`` to the same name in ``dst_dir_fd``; complete or absent, never replacing.

    The copy goes to a temporary name, is fsynced, checked (size and sha256
    read back against what was read from the source, and ``expected_sha256``
    when given), gets ``owner`` = (uid, gid, mode, atime_ns, mtime_ns) or the
    source's, and is then linked to its final name. Returns (size, sha256 or
    None for a symlink). On any failure the temporary copy is removed.
    """
    tmp = temp_name()
    info = os.lstat(name, dir_fd=src_dir_fd)
    try:
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=src_dir_fd)
            os.symlink(target, tmp, dir_fd=dst_dir_fd)
            uid, gid, _mode, atime_ns, mtime_ns = owner or (info.st_uid, info.st_gid, 0, info.st_atime_ns, info.st_mtime_ns)
            if os.geteuid() == 0:
                os.chown(tmp, uid, gid, dir_fd=dst_dir_fd, follow_symlinks=False)
            set_times(tmp, atime_ns, mtime_ns, dir_fd=dst_dir_fd, follow=False)
            publish_no_replace(dst_dir_fd, tmp, name)
            return len(os.fsencode(target)), None
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, 'not a regular file or symlink, left in place', name)
        src = os.open(name, O_READ_NOFOLLOW, dir_fd=src_dir_fd)
        try:
            source = os.fstat(src)
            if identity(source) != identity(info):
                raise OSError(errno.ESTALE, 'replaced while being copied, left in place', name)
            dst = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0), 0o600,
                          dir_fd=dst_dir_fd)
            try:
                copied, digest = _copy_fd(src, dst)
                os.fsync(dst)
                if copied != source.st_size or os.fstat(dst).st_size != copied:
                    raise OSError(errno.EIO, 'copy has %d bytes, the source %d: not kept' % (os.fstat(dst).st_size, source.st_size),
                                  name)
                if _sha256_fd(dst) != digest:
                    raise OSError(errno.EIO, 'copy reads back with another sha256: not kept', name)
                if expected_sha256 and digest != expected_sha256:
                    raise OSError(errno.EIO, 'sha256 %s differs from the journal\'s %s: not restored' % (digest, expected_sha256),
                                  name)
                uid, gid, mode, atime_ns, mtime_ns = owner or (source.st_uid, source.st_gid, stat.S_IMODE(source.st_mode),
                                                               source.st_atime_ns, source.st_mtime_ns)
                set_owner_mode(dst, uid, gid, mode)
                set_times(dst, atime_ns, mtime_ns)
                os.fsync(dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        publish_no_replace(dst_dir_fd, tmp, name)
        tmp = None
        return copied, digest
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dst_dir_fd)
            except OSError:
                pass


def open_quarantine_root(path, create):
    """The quarantine directory's descriptor; refuses one another user could write into."""
    if create and not os.path.lexists(path):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
    try:
        fd = open_dir(os.path.abspath(path))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OmeroBackupError('quarantine_dir %s is a symlink or not a directory: refusing to use it' % path)
        if exc.errno == errno.ENOENT:
            raise OmeroBackupError('quarantine_dir %s does not exist' % path)
        raise
    info = os.fstat(fd)
    problem = None
    if info.st_uid != os.geteuid():
        problem = 'is owned by uid %d, not by the user running the cleanse (uid %d)' % (info.st_uid, os.geteuid())
    elif info.st_mode & 0o077:
        # The undo trusts what it finds below: nobody else may even reach it (the directories
        # below carry the data dir's owners and modes, so this is the one closed door).
        problem = 'is open to group or others (mode %04o, must be 0700)' % stat.S_IMODE(info.st_mode)
    if problem:
        os.close(fd)
        raise OmeroBackupError('quarantine_dir %s %s: refusing to use a quarantine another user can reach. '
                               'Nothing was changed.' % (path, problem))
    return fd


def check_quarantine_root(path):
    """Raise OmeroBackupError when an existing quarantine_dir may not be used (check mode makes nothing)."""
    if os.path.lexists(path):
        os.close(open_quarantine_root(path, create=False))


class Journal(object):
    """The append-only record file of one quarantine; every record is on disk before the caller goes on."""

    def __init__(self, root_fd):
        self.fd = os.open(JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0),
                          0o600, dir_fd=root_fd)
        info = os.fstat(self.fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(self.fd)
            raise OmeroBackupError('%s in the quarantine is not a file of the user running the cleanse' % JOURNAL)

    def write(self, record):
        line = (json.dumps(record, sort_keys=True) + '\n').encode('ascii')
        offset = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            if os.write(self.fd, line) != len(line):
                raise OSError(errno.ENOSPC, 'journal record cut short')
            os.fsync(self.fd)
        except OSError:
            # A torn line would glue itself to the next record: cut it off.
            try:
                os.ftruncate(self.fd, offset)
            except OSError:
                pass
            raise

    def close(self):
        os.close(self.fd)


class QuarantineWriter(object):
    """Moves orphans into the quarantine in the order of the module docstring.

    The quarantine directory and its journal are made at the first move, so a
    run with nothing to move leaves no trace.
    """

    def __init__(self, quarantine_dir, datadir, dir_records):
        self.quarantine_dir, self.datadir, self.dir_records = quarantine_dir, datadir, dir_records
        # Opened at the first move (_open), so a run with nothing to move leaves no quarantine or journal.
        self.root_fd = self.chain = self.journal = None
        self.created = []
        self.recorded = set()

    def _open(self):
        if self.root_fd is not None:
            return
        root_fd = open_quarantine_root(self.quarantine_dir, create=True)
        try:
            journal = Journal(root_fd)
            try:
                journal.write({'type': 'run', 'datadir': escape_name(os.path.realpath(self.datadir)),
                               'datadir_b64': b64(os.path.realpath(self.datadir)), 'started': iso_time()})
            except Exception:
                journal.close()
                raise
        except Exception:
            os.close(root_fd)
            raise
        self.root_fd, self.journal = root_fd, journal
        self.chain = DirChain(root_fd, require_known=False)

    def _mkdir(self, parent_fd, name, relpath):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        self.created.append(relpath)

    def _dir(self, reldir):
        self._open()
        fd = self.chain.open(reldir, create=self._mkdir)
        self._record_dirs(reldir)
        return fd

    def _record_dirs(self, reldir):
        """Journal owner, mode and times of ``reldir`` and its parents as the walk saw them (once per run).

        The first record of a directory wins at restore: it is the state before any cleanse.
        """
        parts = reldir.split('/') if reldir else []
        for index in range(len(parts)):
            relpath = '/'.join(parts[:index + 1])
            record = self.dir_records.get(relpath)
            if relpath not in self.recorded and record is not None:
                self.journal.write({'type': 'dir', 'path_b64': b64(relpath), 'uid': record[2], 'gid': record[3],
                                    'mode': record[4], 'atime_ns': record[5], 'mtime_ns': record[6]})
                self.recorded.add(relpath)

    def note_removed_dir(self, relpath):
        """The cleanse is about to remove the empty data dir directory ``relpath``: the undo makes it again."""
        self._open()
        self._record_dirs(relpath)
        self.journal.write({'type': 'rmdir', 'path_b64': b64(relpath)})

    def put(self, src_fd, reldir, name):
        """Move ``name`` of the data dir directory ``src_fd`` (= ``reldir``) into the quarantine; 'link' or 'copy'.

        Raises OSError with the original still in place.
        """
        qfd = self._dir(reldir)
        relpath = reldir + '/' + name if reldir else name
        if lstat_at(qfd, name) is not None:
            raise OSError(errno.EEXIST, 'already in the quarantine, left in place')
        sha256 = None
        try:
            link_no_replace(src_fd, name, qfd, name)
            method = 'link'
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise OSError(errno.EEXIST, 'already in the quarantine, left in place')
            if exc.errno not in NO_LINK:
                raise
            method = 'copy'
            _size, sha256 = copy_entry(src_fd, name, qfd)
        placed = os.lstat(name, dir_fd=qfd)
        try:
            self.chain.mark_dirty(reldir)
            os.fsync(qfd)
            record = {'type': 'file', 'path_b64': b64(relpath), 'kind': 'link' if stat.S_ISLNK(placed.st_mode) else 'file',
                      'size': placed.st_size, 'uid': placed.st_uid, 'gid': placed.st_gid,
                      'mode': stat.S_IMODE(placed.st_mode), 'atime_ns': placed.st_atime_ns, 'mtime_ns': placed.st_mtime_ns,
                      # Links it keeps once the original name is gone (an orphan may have others, outside the data dir).
                      'nlink': placed.st_nlink - 1 if method == 'link' else placed.st_nlink}
            if sha256:
                record['sha256'] = sha256
            if stat.S_ISLNK(placed.st_mode):
                record['target_b64'] = b64(os.readlink(name, dir_fd=qfd))
            self.journal.write(record)
        except Exception:
            # No completion marker: the quarantine entry goes, the original stays.
            again = lstat_at(qfd, name)
            if again is not None and identity(again) == identity(placed):
                os.unlink(name, dir_fd=qfd)
            raise
        os.unlink(name, dir_fd=src_fd)
        return method

    def finish(self):
        """Give the directories this run made their data dir owner, mode and times; close everything."""
        if self.root_fd is None:
            return
        try:
            self.chain.close()
            # Deepest first: setting a child's times leaves its parent's alone, making it would not.
            for relpath in sorted(self.created, key=lambda path: -path.count('/')):
                record = self.dir_records.get(relpath)
                if record is None:
                    continue
                chain = DirChain(self.root_fd, require_known=False)
                try:
                    fd = chain.open(relpath)
                    set_owner_mode(fd, record[2], record[3], record[4])
                    set_times(fd, record[5], record[6])
                    os.fsync(fd)
                finally:
                    chain.close()
            os.fsync(self.root_fd)
        finally:
            self.journal.close()
            os.close(self.root_fd)
