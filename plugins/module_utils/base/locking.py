# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One operation at a time per destination, with lock files no other local user can plant or hold.

flock on a lock file: released by the kernel when the holder dies, even by
kill -9, so a crashed run never leaves a lock that needs manual removal.

Where lock files live (the one rule, used by every module and by rdiff.lock_path):

* A lock with a directory of its own to sit in (a dump directory, beside an
  rdiff-backup repository) lives there, under the name the caller gives; a
  directory every user may write (sticky or not) is refused.
* A lock for what has no such directory (a database, a data dir, a remote
  repository) is *keyed* (keyed_lock_path) and lives in a lock directory:
  ``lock_dir`` when given, else /run/omero-backup for root and
  ~/.omero-backup-locks for any other user. That directory must be a real
  directory (not a symlink) owned by the running user or root and writable by
  its owner only; the default one is made with mode 0700 when missing. The old shared
  directories (/run/lock, /var/lock, /tmp) are refused: any local user can
  plant a symlink or hold a file there.

Every lock file is opened with O_NOFOLLOW relative to a descriptor of its
directory, then checked on the open descriptor (fstat, so nothing can be
swapped in between): a regular file with one link, owned by the running user,
by root (when the run is not root's: flock works on a read-only descriptor) or
by the directory's owner, and not writable by group or others. Anything else is refused with LockRefused,
which names the owner and the path; a lock held by another run is AlreadyRunning.

take_lock() is the one way a step takes a lock or explains why it cannot: who holds it, or why the lock file
or directory is refused and what to check, then what that means for this run ("Nothing was changed.").
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import fcntl
import hashlib
import os
import re
import stat
import time

LOCK_NAME = '.omero-backup.lock'
# The lock directory of a run as root: /run is root's and on tmpfs, so the
# directory is made again (0700) after a reboot.
ROOT_LOCK_DIR = '/run/omero-backup'
# The lock directory of a run as any other user, in that user's home directory.
USER_LOCK_DIR_NAME = '.omero-backup-locks'
# Names keyed_lock_path makes: a file so named sits in a lock directory, which is checked as such.
_KEYED_NAME = re.compile(r'\Aomero-backup-[a-z]+-[0-9a-f]{20}\.lock\Z')
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class AlreadyRunning(Exception):
    """Another holder has the lock; the message names it."""


class LockRefused(OSError):
    """A lock file or lock directory that another user could have planted or could hold; nothing was written.

    An OSError (errno ENOLCK) whose ``strerror`` is the whole message, so callers that report
    ``exc.strerror`` for a lock they cannot take report this too.
    """

    def __init__(self, message, path=None):
        super(LockRefused, self).__init__(errno.ENOLCK, message)
        self.path = path

    def __str__(self):
        return str(self.strerror)


def owner_name(uid):
    """``name (uid N)`` for messages."""
    try:
        import pwd
        return '%s (uid %d)' % (pwd.getpwuid(uid).pw_name, uid)
    except (ImportError, KeyError):
        return 'uid %d' % uid


def default_lock_dir(euid=None):
    """The lock directory of a run without ``lock_dir``: /run/omero-backup for root, ~/.omero-backup-locks otherwise.

    The non-root default is in the home directory from the password database (not $HOME, which sudo and become
    may keep from another user), so every run of one user, from a shell, cron or Ansible, finds the same locks.
    """
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return ROOT_LOCK_DIR
    try:
        import pwd
        home = pwd.getpwuid(euid).pw_dir
    except (ImportError, KeyError):
        home = ''
    if not home or not home.startswith('/'):
        raise LockRefused('uid %d has no home directory for its lock directory: set lock_dir to a directory it owns '
                          '(mode 0700)' % euid)
    return os.path.join(home, USER_LOCK_DIR_NAME)


def _is_default_lock_dir(path):
    try:
        return os.path.normpath(path) == default_lock_dir()
    except LockRefused:
        return False


def _refuse_dir(path, why):
    raise LockRefused('lock directory %s %s: it must be a directory (not a symlink) owned by %s, writable by its owner '
                      'only (e.g. mode 0700); fix it or set lock_dir'
                      % (path, why, 'root' if os.geteuid() == 0 else 'root or %s' % owner_name(os.geteuid())), path)


def open_lock_dir(path, create=True):
    """A descriptor of the lock directory ``path``, checked: the directory rule of this module.

    ``create``: make it with mode 0700 when missing (the default lock directory; a lock_dir the user names must
    exist, so a misspelt one is not silently a second lock). Refused when it is a symlink, not a directory, owned
    by someone other than the running user or root, or writable by group or others.
    """
    path = os.path.normpath(path)
    if create:
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise LockRefused('cannot create the lock directory %s: %s; create it (owned by %s, mode 0700) or set '
                                  'lock_dir.' % (path, exc.strerror, owner_name(os.geteuid())), path)
    try:
        fd = os.open(path, _DIR_FLAGS | os.O_NOFOLLOW)
    except OSError as exc:
        if os.path.islink(path):
            _refuse_dir(path, 'is a symbolic link (to %s, owned by %s)'
                        % (os.readlink(path), owner_name(os.lstat(path).st_uid)))
        if exc.errno == errno.ENOTDIR:
            _refuse_dir(path, 'is not a directory')
        raise LockRefused('cannot open the lock directory %s: %s.' % (path, exc.strerror), path)
    info = os.fstat(fd)
    why = None
    if info.st_uid not in (0, os.geteuid()):
        why = 'belongs to %s' % owner_name(info.st_uid)
    elif info.st_mode & 0o022:
        why = 'is writable by %s (mode %04o, owner %s)' % ('others' if info.st_mode & 0o002 else 'its group',
                                                           stat.S_IMODE(info.st_mode), owner_name(info.st_uid))
    if why:
        os.close(fd)
        _refuse_dir(path, why)
    return fd


def _open_plain_dir(path):
    """A descriptor of the directory a caller chose for its lock file; refused when anyone may write there."""
    fd = os.open(path or '.', _DIR_FLAGS)
    info = os.fstat(fd)
    if info.st_mode & 0o002:
        os.close(fd)
        raise LockRefused('%s is writable by every user (mode %04o): any local user could plant or hold the lock file '
                          'there; use a directory only its owner can write.'
                          % (path, stat.S_IMODE(info.st_mode)), path)
    return fd


def _trusted_uids(dir_uid=None):
    """Owners a lock file may have: ours; root's when we are not root (root's 0644 file is still flock-able); and
    that of the directory's owner, who could replace any file there anyway (a dump directory of postgres's that a root
    run locks too). A keyed lock directory is ours or root's, so there it adds no one."""
    euid = os.geteuid()
    uids = set([euid, 0])
    if dir_uid is not None:
        uids.add(dir_uid)
    return uids


class ExclusiveLock(object):
    def __init__(self, path, purpose='operation'):
        """``path`` is a lock file, or a directory that receives ``.omero-backup.lock``.

        A file named by keyed_lock_path sits in a lock directory, which acquire() checks (and makes) by the
        directory rule above; any other lock file's directory only must not be writable by every user.
        """
        if not _KEYED_NAME.match(os.path.basename(path)) and os.path.isdir(path):
            path = os.path.join(path, LOCK_NAME)
        self.path = path
        self.purpose = purpose
        self._fd = None

    def _open_in(self, dir_fd, name):
        """(fd, writable) of the lock file, opened without following a symlink."""
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | _FILE_FLAGS, 0o644, dir_fd=dir_fd), True
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LockRefused('lock file %s is a symbolic link (owned by %s): refused, nothing was written; remove '
                                  'it while no omero.backup run is going'
                                  % (self.path, owner_name(os.lstat(name, dir_fd=dir_fd).st_uid)), self.path)
            if exc.errno not in (errno.EACCES, errno.EPERM):
                raise
            denied = exc
        # A lock file root left in a lock directory we may read: flock works on a
        # read-only descriptor too; only the holder's note cannot be written.
        try:
            return os.open(name, os.O_RDONLY | _FILE_FLAGS, dir_fd=dir_fd), False
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise denied  # no file to share: the directory is not writable for us
            raise

    def _check(self, fd, dir_uid):
        """Refuse a lock file another user made (they could hold it for ever) or that is not a plain file of ours."""
        info = os.fstat(fd)
        why = None
        if not stat.S_ISREG(info.st_mode):
            why = 'is not a regular file'
        elif info.st_uid not in _trusted_uids(dir_uid):
            why = 'belongs to %s, not to %s' % (owner_name(info.st_uid), ' or '.join(
                sorted(owner_name(uid) for uid in _trusted_uids(dir_uid))))
        elif info.st_mode & 0o022:
            why = 'is writable by group or others (mode %04o, owner %s)' % (stat.S_IMODE(info.st_mode),
                                                                            owner_name(info.st_uid))
        elif info.st_nlink != 1:
            # A hard link to another file (e.g. /etc/shadow): writing the holder's note would overwrite it.
            why = 'has %d hard links (owner %s)' % (info.st_nlink, owner_name(info.st_uid))
        if why:
            raise LockRefused('lock file %s %s: refused, nothing was written. Remove it while no omero.backup run is '
                              'going, and keep lock files in a directory only their owner can write'
                              % (self.path, why), self.path)

    def acquire(self):
        directory, name = os.path.split(self.path)
        if _KEYED_NAME.match(name):
            dir_fd = open_lock_dir(directory, create=_is_default_lock_dir(directory))
        else:
            dir_fd = _open_plain_dir(directory)
        try:
            dir_uid = os.fstat(dir_fd).st_uid
            fd, writable = self._open_in(dir_fd, name)
        finally:
            os.close(dir_fd)
        try:
            self._check(fd, dir_uid)
        except LockRefused:
            os.close(fd)
            raise
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
                                     % (self.purpose, directory or '.', holder or 'holder unknown'))
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


def keyed_lock_path(kind, key, lock_dir=None):
    """``<lock dir>/omero-backup-<kind>-<hash of key>.lock``, for what has no directory of ours to hold a lock file.

    The lock dir is ``lock_dir`` or default_lock_dir(); nothing is made or checked here (check mode names the
    lock too), ExclusiveLock.acquire() does that.
    """
    digest = hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:20]
    return os.path.join(lock_dir or default_lock_dir(), 'omero-backup-%s-%s.lock' % (kind, digest))


def repository_lock_path(kind, location, lock_dir=None):
    """The collection's own lock of a backup repository (``location``: a tool adapter's Location).

    Local: a sibling of the repository, on the same filesystem; not inside it, where the tool would meet a file it
    does not know (rdiff-backup would treat it as a deleted source file). Remote: keyed_lock_path(kind, spec), which
    serialises runs from this machine only.
    """
    if not location.is_remote:
        parent, base = os.path.split(location.path.rstrip('/') or '/')
        return os.path.join(parent or '/', '.' + (base or 'root') + '.omero-backup.lock')
    return keyed_lock_path(kind, location.spec, lock_dir)


def datadir_lock_path(datadir, lock_dir=None):
    """The lock of an OMERO data dir, for every run that removes or replaces files in it.

    Keyed by the real path, so /OMERO and the volume it links to share one lock.
    """
    return keyed_lock_path('datadir', os.path.realpath(datadir), lock_dir)


def lock_file_hint(path):
    """What else to check when a keyed lock file is out of reach, for an error message ('' when the error says it all).

    Runs as different users only share a lock through a lock_dir they both use: root's default is not
    another user's.
    """
    directory = os.path.dirname(path) or '.'
    try:
        uid = os.lstat(path).st_uid
    except OSError:
        if os.path.lexists(directory):
            return ''
        return ('Check that the lock directory exists: create %s (owned by %s, mode 0700) or leave lock_dir unset. '
                % (directory, owner_name(os.geteuid())))
    if uid == os.geteuid() or uid not in _trusted_uids():
        return ''  # ours, or refused by LockRefused with its owner named
    return ('The lock file belongs to %s: run every such task as the same user, or remove the file while none runs '
            '(it holds no state: the lock is an flock on it). ' % owner_name(uid))


def take_lock(path, purpose, consequence='Nothing was changed.', result=None, error=None):
    """The ExclusiveLock ``path``, held for ``purpose``; or ``error`` (OperationFailed or a step's subclass of it).

    The error's message says who holds the lock (AlreadyRunning: ``another omero.backup <purpose> is already
    running on <dir> (pid N, ...)``) or why the lock file cannot be taken (LockRefused's reason, a missing lock
    directory, a lock file of another user), then ``consequence``; it carries ``result`` (what the step had
    found so far) and three attributes for callers that go on without a lock: ``busy`` (another run holds it),
    ``errno`` (of the OSError, None when busy) and ``reason`` (the holder, or the OSError's text).
    """
    if error is None:
        # Imported here, not at the top: this file must import nothing of the collection when it loads (tests run
        # it alone, copied, as another user).
        from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed as error
    lock = ExclusiveLock(path, purpose)
    try:
        return lock.acquire()
    except AlreadyRunning as exc:
        failure = error('%s. %s' % (exc, consequence), result)
        failure.busy, failure.errno, failure.reason = True, None, str(exc)
    except OSError as exc:
        failure = error('cannot take the lock %s: %s. %s%s' % (path, exc.strerror or exc, lock_file_hint(path), consequence),
                        result)
        failure.busy, failure.errno, failure.reason = False, exc.errno, exc.strerror or str(exc)
    raise failure
