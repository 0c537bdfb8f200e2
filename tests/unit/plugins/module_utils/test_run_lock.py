# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease rules of the run lock (module_utils/run_lock.py), on real files, processes and /proc."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base.locking import LockRefused
from ansible_collections.omero.backup.plugins.module_utils.run_lock import (
    RunLock, RunLockHeld, boot_id, holder_state, process_start, run_lock_step)

HOUR = 3600.0
NOW = 2000000000.0
REMOTE = 'controller.elsewhere.example'


def holder(run_id, host=REMOTE, pid=None):
    return dict(run_id=run_id, job='backup', controller_host=host, controller_pid=pid)


def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


@pytest.fixture
def lock(tmp_path):
    return RunLock('omero-server', str(tmp_path / 'locks'))


def on_disk(lock):
    with open(lock.path) as handle:
        return json.load(handle)


def test_a_free_lock_is_taken_into_a_private_record_in_a_private_directory(lock):
    result = lock.take(holder('run-1'), NOW, HOUR, step='preflight')
    assert result['state'] == 'taken' and result['changed'] and result['taken_over'] is None
    record = on_disk(lock)
    assert record['run_id'] == 'run-1' and record['controller_host'] == REMOTE
    assert record['target_host'] == socket.gethostname() and record['step'] == 'preflight'
    assert record['expires_epoch'] == NOW + HOUR and record['started_epoch'] == NOW
    assert stat.S_IMODE(os.stat(lock.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lock.lock_dir).st_mode) == 0o700


def test_a_live_holder_is_refused_and_named(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    with pytest.raises(RunLockHeld) as caught:
        lock.take(holder('run-2'), NOW + 60, HOUR)
    message = str(caught.value)
    assert 'run run-1 from %s' % REMOTE in message and 'lease until' in message
    assert 'by hand' not in message and 'remove' not in message.lower()
    assert caught.value.holder['run_id'] == 'run-1'
    assert on_disk(lock)['run_id'] == 'run-1'


def test_the_same_run_taking_again_holds_it(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    result = lock.take(holder('run-1'), NOW + 60, HOUR)
    assert result['state'] == 'held' and not result['changed']
    assert on_disk(lock)['expires_epoch'] == NOW + 60 + HOUR


def test_an_expired_lease_of_another_controller_is_taken_over_with_a_warning_naming_it(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    result = lock.take(holder('run-2'), NOW + HOUR + 1, HOUR)
    assert result['state'] == 'taken' and result['taken_over']['run_id'] == 'run-1'
    assert len(result['warnings']) == 1
    assert 'run run-1 from %s' % REMOTE in result['warnings'][0] and 'lease expired' in result['warnings'][0]
    assert on_disk(lock)['run_id'] == 'run-2'


def test_a_dead_holder_on_this_host_is_taken_over_before_its_lease_ends(lock):
    pid = dead_pid()
    lock.take(holder('run-1', socket.gethostname(), pid), NOW, HOUR)
    result = lock.take(holder('run-2'), NOW + 1, HOUR)
    assert result['taken_over']['run_id'] == 'run-1'
    assert '(pid %d) is gone' % pid in result['warnings'][0]


def test_a_running_holder_on_this_host_keeps_the_lock_after_its_lease(lock):
    """A slow step of a live run is never taken from it."""
    lock.take(holder('run-1', socket.gethostname(), os.getpid()), NOW, HOUR)
    with pytest.raises(RunLockHeld) as caught:
        lock.take(holder('run-2'), NOW + 10 * HOUR, HOUR)
    assert 'still runs on this host' in str(caught.value)


def test_a_reused_pid_or_a_reboot_means_the_holder_is_gone():
    here = socket.gethostname()
    record = dict(run_id='r', controller_host=here, controller_pid=os.getpid(), expires_epoch=NOW + HOUR,
                  controller_pid_start=process_start(os.getpid()) + 1, boot_id=boot_id())
    assert holder_state(record, NOW) == ('gone', 'pid %d is now another process' % os.getpid())
    record.update(controller_pid_start=process_start(os.getpid()), boot_id='another-boot')
    assert holder_state(record, NOW) == ('gone', 'this host has rebooted since')
    record['boot_id'] = boot_id()
    assert holder_state(record, NOW)[0] == 'live'


def test_a_holder_on_another_host_is_judged_by_its_lease_only():
    record = dict(run_id='r', controller_host=REMOTE, controller_pid=dead_pid(), expires_epoch=NOW + HOUR)
    assert holder_state(record, NOW)[0] == 'live'
    assert holder_state(record, NOW + HOUR + 1)[0] == 'gone'


def test_renewal_extends_the_lease_and_fails_once_the_lock_was_taken_over(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    result = lock.renew('run-1', NOW + 50 * 60, HOUR, step='datadir')
    assert result['state'] == 'held'
    assert on_disk(lock)['expires_epoch'] == NOW + 50 * 60 + HOUR and on_disk(lock)['step'] == 'datadir'
    # Renewed, the lease has not expired an hour after the start: no takeover.
    with pytest.raises(RunLockHeld):
        lock.take(holder('run-2'), NOW + HOUR + 1, HOUR)
    lock.take(holder('run-2'), NOW + 3 * HOUR, HOUR)
    with pytest.raises(RunLockHeld) as caught:
        lock.renew('run-1', NOW + 3 * HOUR, HOUR)
    assert 'no longer held by run run-1' in str(caught.value) and 'run run-2' in str(caught.value)


def test_release_removes_only_our_own_lock(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    result = lock.release('run-2')
    assert result['state'] == 'held' and not result['changed'] and 'left in place' in result['warnings'][0]
    assert os.path.exists(lock.path)
    assert lock.release('run-1')['changed']
    assert not os.path.exists(lock.path)
    assert lock.release('run-1') == dict(path=lock.path, name='omero-server', changed=False, taken_over=None,
                                         warnings=[], holder=None, state='absent')


def test_check_mode_writes_nothing_and_makes_no_directory(tmp_path):
    checked = RunLock('omero-server', str(tmp_path / 'locks'), check_mode=True)
    assert checked.take(holder('run-1'), NOW, HOUR)['state'] == 'taken'
    assert checked.renew('run-1', NOW, HOUR)['state'] == 'absent'
    assert checked.release('run-1')['state'] == 'absent'
    assert not os.path.exists(str(tmp_path / 'locks'))
    real = RunLock('omero-server', str(tmp_path / 'locks'))
    real.take(holder('run-1'), NOW, HOUR)
    before = open(real.path).read()
    before_names = os.listdir(real.lock_dir)
    checked = RunLock('omero-server', str(tmp_path / 'locks'), check_mode=True)
    with pytest.raises(RunLockHeld):
        checked.take(holder('run-2'), NOW, HOUR)
    assert checked.take(holder('run-2'), NOW + 2 * HOUR, HOUR)['taken_over']['run_id'] == 'run-1'
    assert checked.release('run-1')['changed']
    assert open(real.path).read() == before
    # Not even the flock's file: a check run leaves the lock directory as it found it.
    assert sorted(os.listdir(real.lock_dir)) == sorted(before_names)


def test_a_torn_record_is_taken_over(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    with open(lock.path, 'w') as handle:
        handle.write('{"run_id": "ru')
    result = lock.take(holder('run-2'), NOW, HOUR)
    assert result['state'] == 'taken' and 'unreadable' in result['warnings'][0]


def test_a_record_others_could_write_is_refused_not_believed(lock):
    lock.take(holder('run-1'), NOW, HOUR)
    os.chmod(lock.path, 0o644)
    with pytest.raises(LockRefused) as caught:
        lock.take(holder('run-2'), NOW + 2 * HOUR, HOUR)
    assert 'not a private file' in str(caught.value)


def test_a_lock_directory_others_may_write_is_refused(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    os.chmod(str(shared), 0o777)
    with pytest.raises(LockRefused) as caught:
        RunLock('omero-server', str(shared)).take(holder('run-1'), NOW, HOUR)
    assert 'writable by others' in str(caught.value)
    assert os.listdir(str(shared)) == []


def test_a_symlinked_record_is_refused(lock, tmp_path):
    lock.take(holder('run-1'), NOW, HOUR)
    os.unlink(lock.path)
    os.symlink(str(tmp_path / 'elsewhere'), lock.path)
    with pytest.raises(LockRefused):
        lock.take(holder('run-2'), NOW, HOUR)


def test_names_are_checked():
    with pytest.raises(Exception) as caught:
        RunLock('../etc', '/nonexistent')
    assert 'run lock name' in str(caught.value)


def test_the_module_step_dispatches_on_state(lock):
    params = dict(state='present', run_id='run-1', job='restore', controller_host=REMOTE, controller_pid=None,
                  step='preflight')
    assert run_lock_step(lock, params, HOUR, now=NOW)['holder']['job'] == 'restore'
    assert run_lock_step(lock, dict(params, state='renewed'), HOUR, now=NOW + 1)['state'] == 'held'
    assert run_lock_step(lock, dict(params, state='absent'), HOUR)['state'] == 'absent'


def test_check_mode_in_an_existing_lock_directory_creates_no_file(tmp_path):
    locks = tmp_path / 'locks'
    locks.mkdir(mode=0o700)
    checked = RunLock('omero-server', str(locks), check_mode=True)
    checked.take(holder('run-1'), NOW, HOUR)
    checked.renew('run-1', NOW, HOUR)
    checked.release('run-1')
    assert os.listdir(str(locks)) == []
