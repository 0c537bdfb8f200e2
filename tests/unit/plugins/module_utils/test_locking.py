# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base import locking
from ansible_collections.omero.backup.plugins.module_utils.base.locking import AlreadyRunning, ExclusiveLock, LockRefused
from helpers.dirs import temp_dir

HOLDER = '''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, b"pid %d, db_dump since now\\n" % os.getpid(), 0)
sys.stdout.write("locked\\n"); sys.stdout.flush()
time.sleep(60)
'''


def _hold_in_other_process(lock_file):
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, lock_file], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b'locked'
    return proc


def test_second_holder_fails_fast_with_already_running(tmp_path):
    holder = _hold_in_other_process(str(tmp_path / '.omero-backup.lock'))
    try:
        started = time.time()
        with pytest.raises(AlreadyRunning) as error:
            ExclusiveLock(str(tmp_path), 'db_dump').acquire()
        assert time.time() - started < 5
        assert 'already running' in str(error.value)
        assert 'pid %d' % holder.pid in str(error.value)
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_holder_is_free_again(tmp_path):
    holder = _hold_in_other_process(str(tmp_path / '.omero-backup.lock'))
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with ExclusiveLock(str(tmp_path), 'db_dump'):
        pass


def test_lock_is_reentrant_after_release(tmp_path):
    lock = ExclusiveLock(str(tmp_path), 'cleanse')
    with lock:
        pass
    with lock:
        pass


LOCK_AS_OTHER_USER = '''
import importlib.util, sys
spec = importlib.util.spec_from_file_location("locking", sys.argv[2])
locking = importlib.util.module_from_spec(spec)
spec.loader.exec_module(locking)
lock = locking.ExclusiveLock(sys.argv[1], "db_restore")
try:
    lock.acquire()
except locking.AlreadyRunning as exc:
    print("refused: %s" % exc)
except locking.LockRefused as exc:
    print("untrusted: %s" % exc)
else:
    lock.release()
    print("locked")
'''

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='needs root to act as two users')


@pytest.fixture
def world_readable_dir():
    """A directory another user can reach (pytest's basetemp is private to root)."""
    with temp_dir('omero-backup-locktest-', 0o755) as path:
        yield path


def _as_nobody(lock_file, world_readable_dir):
    """Run this very module as ``nobody`` (from a copy it can read) on ``lock_file``; its one line of output."""
    module = os.path.join(world_readable_dir, 'locking.py')
    if not os.path.exists(module):
        shutil.copy(locking.__file__, module)
        os.chmod(module, 0o644)
    done = subprocess.run(['runuser', '-u', 'nobody', '--', sys.executable, '-c', LOCK_AS_OTHER_USER, lock_file, module],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@needs_root
def test_lock_file_root_left_in_a_root_owned_lock_dir_still_locks_for_another_user(world_readable_dir):
    """root's lock file (0644) in a lock directory root owns (0755): a run as another user flocks it read-only,
    and two runs are still kept apart."""
    lock_file = locking.keyed_lock_path('database', 'db:5432/omero', world_readable_dir)
    ExclusiveLock(lock_file, 'db_restore').acquire().release()
    assert oct(os.stat(lock_file).st_mode & 0o777) == '0o644'
    assert _as_nobody(lock_file, world_readable_dir) == 'locked'
    with ExclusiveLock(lock_file, 'db_restore'):
        held = _as_nobody(lock_file, world_readable_dir)
    assert held.startswith('refused: another omero.backup db_restore is already running'), held


def test_default_lock_dir_is_private_to_the_running_user():
    assert locking.default_lock_dir(0) == '/run/omero-backup'
    nobody = pwd.getpwnam('nobody')
    assert locking.default_lock_dir(nobody.pw_uid) == os.path.join(nobody.pw_dir, '.omero-backup-locks')
    # Naming a lock path makes and checks nothing (check mode reports the path too).
    path = locking.keyed_lock_path('datadir', '/OMERO', '/no/such/dir')
    assert path.startswith('/no/such/dir/omero-backup-datadir-') and not os.path.exists('/no/such')


def test_missing_default_lock_dir_is_made_0700(tmp_path):
    fd = locking.open_lock_dir(str(tmp_path / 'locks'), create=True)
    os.close(fd)
    info = os.lstat(str(tmp_path / 'locks'))
    assert info.st_uid == os.geteuid() and oct(info.st_mode & 0o7777) == '0o700'


def test_a_named_lock_dir_that_is_missing_is_not_made(tmp_path):
    lock_file = locking.keyed_lock_path('database', 'x', str(tmp_path / 'misspelt'))
    with pytest.raises(LockRefused, match='cannot open the lock directory .*misspelt'):
        ExclusiveLock(lock_file, 'db_restore').acquire()
    assert not os.path.exists(str(tmp_path / 'misspelt'))


@pytest.mark.parametrize('mode, why', [(0o1777, 'writable by others'), (0o777, 'writable by others'),
                                       (0o770, 'writable by its group')])
def test_a_shared_lock_dir_is_refused(tmp_path, mode, why):
    shared = tmp_path / 'lock'
    shared.mkdir()
    os.chmod(str(shared), mode)
    with pytest.raises(LockRefused) as error:
        ExclusiveLock(locking.keyed_lock_path('datadir', '/OMERO', str(shared)), 'cleanse').acquire()
    assert why in str(error.value) and str(shared) in str(error.value)
    assert os.listdir(str(shared)) == []


def test_a_symlinked_lock_dir_is_refused(tmp_path):
    real = tmp_path / 'real'
    real.mkdir()
    os.symlink(str(real), str(tmp_path / 'link'))
    with pytest.raises(LockRefused, match='is a symbolic link'):
        ExclusiveLock(locking.keyed_lock_path('datadir', '/OMERO', str(tmp_path / 'link')), 'cleanse').acquire()
    assert os.listdir(str(real)) == []


@needs_root
def test_a_lock_dir_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / 'theirs'
    theirs.mkdir(mode=0o700)
    os.chown(str(theirs), pwd.getpwnam('nobody').pw_uid, -1)
    with pytest.raises(LockRefused, match=r'belongs to nobody \(uid'):
        ExclusiveLock(locking.keyed_lock_path('datadir', '/OMERO', str(theirs)), 'cleanse').acquire()


def test_a_lock_file_beside_a_destination_in_a_world_writable_dir_is_refused(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    with pytest.raises(LockRefused, match='writable by every user'):
        ExclusiveLock(str(shared), 'db_dump').acquire()
    assert os.listdir(str(shared)) == []


def test_a_symlink_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / 'precious'
    target.write_bytes(b'keep me\n')
    os.symlink(str(target), str(tmp_path / '.omero-backup.lock'))
    with pytest.raises(LockRefused, match='is a symbolic link'):
        ExclusiveLock(str(tmp_path), 'db_dump').acquire()
    assert target.read_bytes() == b'keep me\n'
    # A dangling one is not followed to create its target either.
    os.unlink(str(tmp_path / '.omero-backup.lock'))
    os.symlink(str(tmp_path / 'made'), str(tmp_path / '.omero-backup.lock'))
    with pytest.raises(LockRefused):
        ExclusiveLock(str(tmp_path), 'db_dump').acquire()
    assert not os.path.lexists(str(tmp_path / 'made'))


def test_a_hard_link_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / 'precious'
    target.write_bytes(b'keep me\n')
    os.link(str(target), str(tmp_path / '.omero-backup.lock'))
    with pytest.raises(LockRefused, match='hard links'):
        ExclusiveLock(str(tmp_path), 'db_dump').acquire()
    assert target.read_bytes() == b'keep me\n'


def test_a_fifo_at_the_lock_path_is_refused_without_blocking(tmp_path):
    os.mkfifo(str(tmp_path / '.omero-backup.lock'))
    with pytest.raises(LockRefused, match='not a regular file'):
        ExclusiveLock(str(tmp_path), 'db_dump').acquire()


def test_a_group_writable_lock_file_is_refused(tmp_path):
    lock_file = tmp_path / '.omero-backup.lock'
    lock_file.write_bytes(b'')
    os.chmod(str(lock_file), 0o666)
    with pytest.raises(LockRefused, match='writable by group or others'):
        ExclusiveLock(str(tmp_path), 'db_dump').acquire()


@needs_root
def test_a_lock_file_another_user_made_is_refused_naming_its_owner(tmp_path):
    """Not "already running (pid 1)": the other user could hold it for ever, so it is refused as theirs."""
    lock_file = locking.keyed_lock_path('datadir', '/OMERO', str(tmp_path))
    with open(lock_file, 'wb') as handle:
        handle.write(b'pid 1, cleanse since 2026-01-01T00:00:00Z\n')
    os.chown(lock_file, pwd.getpwnam('nobody').pw_uid, -1)
    os.chmod(lock_file, 0o644)
    with pytest.raises(LockRefused) as error:
        ExclusiveLock(lock_file, 'cleanse').acquire()
    message = str(error.value)
    assert 'belongs to nobody (uid' in message and lock_file in message and 'already running' not in message
    assert open(lock_file, 'rb').read() == b'pid 1, cleanse since 2026-01-01T00:00:00Z\n'
    assert locking.lock_file_hint(lock_file) == ''  # the message says it all


@needs_root
def test_a_lock_file_of_the_directory_owner_is_trusted(tmp_path):
    """A dump directory of postgres's (here nobody's): its owner could replace any file there anyway, so a root run
    locks the lock file a run as that user left."""
    dest = tmp_path / 'dumps'
    dest.mkdir(mode=0o700)
    nobody = pwd.getpwnam('nobody')
    os.chown(str(dest), nobody.pw_uid, nobody.pw_gid)
    lock_file = dest / '.omero-backup.lock'
    lock_file.write_bytes(b'')
    os.chown(str(lock_file), nobody.pw_uid, nobody.pw_gid)
    with ExclusiveLock(str(dest), 'db_dump'):
        assert b'db_dump since' in lock_file.read_bytes()


@needs_root
def test_a_user_without_a_home_is_told_to_set_lock_dir(world_readable_dir):
    """nobody's default lock directory would be under /nonexistent: refused with what to do, nothing made."""
    nobody = pwd.getpwnam('nobody')
    lock_file = os.path.join(locking.default_lock_dir(nobody.pw_uid), os.path.basename(
        locking.keyed_lock_path('datadir', '/OMERO', '/')))
    said = _as_nobody(lock_file, world_readable_dir)
    assert said.startswith('untrusted: cannot create the lock directory %s' % os.path.dirname(lock_file)), said
    assert 'set lock_dir' in said
