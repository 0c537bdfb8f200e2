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

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
