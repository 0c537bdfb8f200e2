# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lock files a local user cannot turn against a root run (issue 12, item 2), with the real ``nobody`` user.

The root run is the real omero.backup.cleanse module: it takes the data dir lock before it connects to anything,
so a database it cannot reach is enough (no sandbox needed). The old layout, a shared sticky world-writable lock
directory such as /run/lock, is rebuilt in /tmp and named with lock_dir.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
import stat
import subprocess
import sys

import pytest

from helpers.ansible import collections_path, run_module
from helpers.dirs import temp_dir

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root and the nobody user')
PRECIOUS = b'root:$6$not-a-real-hash:19000:0:99999:7:::\n'


def _as_nobody(*argv, **kwargs):
    return subprocess.run(['runuser', '-u', 'nobody', '--'] + list(argv), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False, **kwargs)


def _hold_as_nobody(path):
    """nobody creates ``path`` (when missing) and holds an flock on it, as a hostile local user would."""
    proc = subprocess.Popen(['runuser', '-u', 'nobody', '--', 'flock', path, 'sh', '-c', 'echo locked; exec sleep 600'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().strip()
    assert line == b'locked', proc.stderr.read()
    return proc


def _stop(proc):
    proc.kill()
    proc.wait()


@pytest.fixture
def shared_lock_dir():
    """The old layout: a sticky, world-writable lock directory (like /run/lock) that nobody can write to."""
    with temp_dir('omero-backup-shared-lock-', 0o1777) as path:
        yield path


@pytest.fixture
def root_lock_dir():
    """A lock directory of root's (0755) that nobody can reach but not write (pytest's basetemp is private)."""
    with temp_dir('omero-backup-root-lock-', 0o755) as path:
        yield path


@pytest.fixture
def datadir(tmp_path):
    path = tmp_path / 'OMERO'
    path.mkdir()
    return str(path)


def _cleanse(datadir, **extra):
    """The real cleanse as root; PostgreSQL on a port where nothing listens, so it stops right after the lock."""
    args = dict(datadir=datadir, login_host='127.0.0.1', port=1, login_user='postgres', login_password='unused-Pa55-not-in-any-message',
                connect_timeout=2, min_age='0')
    args.update(extra)
    return run_module('cleanse', args)


def test_a_symlink_planted_by_nobody_at_the_lock_path_is_refused_and_its_target_untouched(
        datadir, shared_lock_dir, tmp_path):
    """(a) With fs.protected_symlinks=0, a root run that follows the symlink truncates any file: here a stand-in
    for /etc/shadow, root's own, in a directory nobody cannot write."""
    target = tmp_path / 'shadow'
    target.write_bytes(PRECIOUS)
    os.chmod(str(target), 0o600)
    lock = datadir_lock_path(datadir, shared_lock_dir)
    planted = _as_nobody('ln', '-s', str(target), lock)
    assert planted.returncode == 0, planted.stderr
    assert _as_nobody('sh', '-c', ': > %s' % target).returncode != 0, 'the target must be out of nobody\'s reach'

    refused = _cleanse(datadir, lock_dir=shared_lock_dir)

    assert refused['failed']
    assert target.read_bytes() == PRECIOUS, 'the root run wrote through the planted symlink'
    assert os.path.islink(lock)
    assert shared_lock_dir in refused['msg'] and 'writable by' in refused['msg'], refused['msg']
    assert 'Nothing was removed' in refused['msg']


def test_a_lock_file_nobody_made_and_holds_in_a_shared_dir_is_not_reported_as_a_run(datadir, shared_lock_dir):
    """(b) nobody creates and flocks the lock file first: the root run does not wait on it nor call it a run of
    ours ("already running (pid 1)"); it refuses the shared directory and says why."""
    lock = datadir_lock_path(datadir, shared_lock_dir)
    holder = _hold_as_nobody(lock)
    try:
        with open(lock, 'w') as handle:  # what the holder's note says is the attacker's choice
            handle.write('pid 1, cleanse since 2026-01-01T00:00:00Z\n')
        refused = _cleanse(datadir, lock_dir=shared_lock_dir)
    finally:
        _stop(holder)
    assert refused['failed']
    assert 'already running' not in refused['msg'] and 'pid 1' not in refused['msg'], refused['msg']
    assert shared_lock_dir in refused['msg'] and 'writable by others' in refused['msg'], refused['msg']


def test_a_lock_file_that_belongs_to_nobody_is_refused_naming_its_owner(datadir, root_lock_dir):
    """(b) A lock directory of root's that still holds a lock file nobody made (e.g. while it was shared): the
    root run names the file and its owner instead of waiting for it for ever."""
    lock_dir = root_lock_dir
    lock = datadir_lock_path(datadir, lock_dir)
    with open(lock, 'w') as handle:
        handle.write('pid 1, cleanse since 2026-01-01T00:00:00Z\n')
    nobody = pwd.getpwnam('nobody')
    os.chown(lock, nobody.pw_uid, nobody.pw_gid)
    holder = _hold_as_nobody(lock)
    try:
        refused = _cleanse(datadir, lock_dir=lock_dir)
    finally:
        _stop(holder)
    assert refused['failed']
    assert 'already running' not in refused['msg'], refused['msg']
    assert lock in refused['msg'] and 'belongs to nobody (uid %d)' % nobody.pw_uid in refused['msg'], refused['msg']


def test_the_default_lock_dir_is_root_owned_0700_and_out_of_nobodys_reach(datadir):
    """(c) Without lock_dir, a root run locks in /run/omero-backup: made when missing, root's, mode 0700."""
    result = _cleanse(datadir)
    assert result['failed'] and 'locked' not in result['msg'], result['msg']  # it got past the lock to PostgreSQL
    lock = datadir_lock_path(datadir)
    assert os.path.dirname(lock) == '/run/omero-backup'
    info = os.lstat('/run/omero-backup')
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o700
    held = os.lstat(lock)
    assert stat.S_ISREG(held.st_mode) and held.st_uid == 0 and stat.S_IMODE(held.st_mode) & 0o022 == 0
    # nobody can neither plant a file there nor open the lock file to hold it.
    assert _as_nobody('ln', '-s', '/etc/hostname', '/run/omero-backup/planted').returncode != 0
    assert _as_nobody('flock', '-n', lock, 'true').returncode != 0
