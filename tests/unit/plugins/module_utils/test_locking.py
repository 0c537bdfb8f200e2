# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.omero.backup.plugins.module_utils import locking
from ansible_collections.omero.backup.plugins.module_utils.locking import AlreadyRunning, ExclusiveLock

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
AlreadyRunning = locking.AlreadyRunning
lock = locking.ExclusiveLock(sys.argv[1], "db_restore")
try:
    lock.acquire()
except AlreadyRunning as exc:
    print("refused: %s" % exc)
else:
    lock.release()
    print("locked")
'''


@pytest.fixture
def world_readable_dir():
    """A directory another user can reach (pytest's basetemp is private to root)."""
    path = tempfile.mkdtemp(prefix='omero-backup-locktest-')
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to act as two users')
def test_lock_file_left_by_another_user_still_locks(world_readable_dir):
    """A lock file root left in a shared directory (mode 0644, not writable by others) must not stop a run as
    another user, and must still keep two runs apart."""
    shared = os.path.join(world_readable_dir, 'lock')
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    lock_file = os.path.join(shared, 'omero-backup-database-x.lock')
    ExclusiveLock(lock_file, 'db_restore').acquire().release()
    assert oct(os.stat(lock_file).st_mode & 0o777) == '0o644'
    # The other user runs this very module, from a copy it can read.
    module = os.path.join(world_readable_dir, 'locking.py')
    shutil.copy(locking.__file__, module)
    os.chmod(module, 0o644)
    as_nobody = ['runuser', '-u', 'nobody', '--', sys.executable, '-c', LOCK_AS_OTHER_USER, lock_file, module]
    free = subprocess.run(as_nobody, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert free.stdout.strip() == 'locked', free.stderr
    with ExclusiveLock(lock_file, 'db_restore'):
        held = subprocess.run(as_nobody, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert held.stdout.startswith('refused: another omero.backup db_restore is already running'), held.stdout + held.stderr
