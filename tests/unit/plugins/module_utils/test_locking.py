# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import signal
import subprocess
import sys
import time

import pytest

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
