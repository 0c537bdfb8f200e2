# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One operation at a time per destination.

flock on a lock file: released by the kernel when the holder dies, even by
kill -9, so a crashed run never leaves a lock that needs manual removal.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import fcntl
import hashlib
import os
import time

LOCK_NAME = '.omero-backup.lock'


class AlreadyRunning(Exception):
    """Another holder has the lock; the message names it."""


class ExclusiveLock(object):
    def __init__(self, path, purpose='operation'):
        """``path`` is a lock file, or a directory that receives ``.omero-backup.lock``."""
        if os.path.isdir(path):
            path = os.path.join(path, LOCK_NAME)
        self.path = path
        self.purpose = purpose
        self._fd = None

    def _open(self):
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), True
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM) or not os.path.isfile(self.path):
                raise
        # A lock file another user (root, postgres) left in a shared lock
        # directory: flock works on a read-only descriptor too; only the
        # holder's note cannot be written.
        return os.open(self.path, os.O_RDONLY), False

    def acquire(self):
        fd, writable = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ''
            try:
                holder = os.pread(fd, 200, 0).decode('utf-8', 'replace').strip()
            except OSError:
                pass
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning('another omero.backup %s is already running on %s (%s)'
                                     % (self.purpose, os.path.dirname(self.path) or '.', holder or 'holder unknown'))
            raise
        if writable:
            os.ftruncate(fd, 0)
            since = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
            os.pwrite(fd, ('pid %d, %s since %s\n' % (os.getpid(), self.purpose, since)).encode(), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


# For what has no directory of ours to hold a lock file: a database, or a data
# dir that a restore swaps whole and a backup would copy. The same places, in
# the same order, as rdiff.lock_path uses for remote repositories.
KEYED_LOCK_DIRS = ('/run/lock', '/var/lock', '/tmp')


def keyed_lock_path(kind, key, lock_dir=None):
    """``<lock_dir>/omero-backup-<kind>-<hash of key>.lock``; without lock_dir, the first writable of KEYED_LOCK_DIRS."""
    digest = hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:20]
    name = 'omero-backup-%s-%s.lock' % (kind, digest)
    if lock_dir:
        return os.path.join(lock_dir, name)
    for directory in KEYED_LOCK_DIRS:
        if os.path.isdir(directory) and os.access(directory, os.W_OK):
            return os.path.join(directory, name)
    raise OSError(errno.EACCES, 'no writable lock directory among %s' % ', '.join(KEYED_LOCK_DIRS))


def datadir_lock_path(datadir, lock_dir=None):
    """The lock of an OMERO data dir, for every run that removes or replaces files in it.

    Keyed by the real path, so /OMERO and the volume it links to share one lock.
    """
    return keyed_lock_path('datadir', os.path.realpath(datadir), lock_dir)


def lock_file_hint(path):
    """Why a keyed lock file may be out of reach, for an error message ('' when there is nothing to add).

    The lock directories are shared: a file left by a run as another user (root, postgres) stays theirs.
    """
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return 'Check that the lock directory exists and is writable. '
    if uid == os.geteuid():
        return ''
    try:
        import pwd
        owner = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        owner = 'uid %d' % uid
    return ('The lock file belongs to %s: run every such task as the same user, or remove the file while none runs '
            '(it holds no state: the lock is an flock on it). ' % owner)
