# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir_backup / datadir_restore through the real ansible CLI, real rdiff-backup and the sandbox's
data dir and PostgreSQL, with the repository on a local path."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from helpers.ansible import collections_path, run_module
from helpers.sandbox import connection_args
from helpers.tree import snapshot

pytestmark = pytest.mark.skipif(not shutil.which('rdiff-backup'), reason='rdiff-backup is not installed')

MARKER = '.omero/omero-backup-restored.json'


def excluded(relpath):
    """What the default exclude list leaves out of a backup."""
    parts = relpath.split('/')
    if parts[0] == 'BioFormatsCache':
        return True
    return parts[-1] == '.lock' and '.omero' in parts


def backed_up(root):
    return dict((path, entry) for path, entry in snapshot(root).items() if not excluded(path))


def lock_file_for(location):
    path = collections_path()
    if path not in sys.path:
        sys.path.insert(0, path)
    from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import lock_path, parse_location
    return lock_path(parse_location(location))


def hold_lock(lock_file):
    """Another process holding our lock, as a concurrent datadir_backup would."""
    holder = ('import fcntl, os, sys, time\n'
              'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n'
              'fcntl.flock(fd, fcntl.LOCK_EX)\n'
              'os.pwrite(fd, b"pid %d, datadir backup since now\\n" % os.getpid(), 0)\n'
              'print("locked", flush=True)\n'
              'time.sleep(120)\n')
    proc = subprocess.Popen([sys.executable, '-c', holder, lock_file], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b'locked'
    return proc


def test_datadir_backup_restore_round_trip_sandbox(sandbox, tmp_path):
    datadir = sandbox['datadir']
    repo = str(tmp_path / 'backup' / 'omero-data')
    os.makedirs(os.path.dirname(repo))
    expected = backed_up(datadir)
    # The sandbox's own checksums agree with what the backup must hold.
    for relpath, digest in sandbox['checksums'].items():
        if not excluded(relpath):
            assert expected[relpath][2] == digest, relpath

    made = run_module('datadir_backup', {'src': datadir, 'dest': repo, 'keep_increments_for': '8W'})
    assert made['changed'] and not made['failed'], made
    assert made['verified'] is True and made['regressed'] is False and made['increments'] == 1
    assert made['files'] >= len(expected) and made['bytes'] > 0 and made['files_per_second'] > 0
    assert made['symlinks']['outside'] == len(sandbox['symlinks'])
    if sandbox['symlinks']:
        assert any('point outside' in warning for warning in made['warnings_list'])

    planned = run_module('datadir_backup', {'src': datadir, 'dest': repo, 'skip_if_newer_than': '1h'}, check=True)
    assert planned['skipped'] and not planned['changed'], planned

    dest = str(tmp_path / 'OMERO')
    db_args = connection_args(sandbox)
    restored = run_module('datadir_restore', dict(db_args, src=repo, dest=dest))
    assert restored['changed'] and not restored['failed'], restored
    assert restored['uuid_match'] is True and restored['db_uuid'] == sandbox['db_uuid']
    assert snapshot(dest, skip=(MARKER,)) == expected

    # Damage the restored store: a truncated pixel file, a lost import, the repository marker gone.
    damaged = sorted(path for path, entry in expected.items() if entry[0] == stat.S_IFREG and entry[1])
    with open(os.path.join(dest, damaged[0]), 'r+b') as handle:
        handle.truncate(1)
    os.unlink(os.path.join(dest, damaged[-1]))
    shutil.rmtree(os.path.join(dest, '.omero', 'repository'))
    before = snapshot(dest)
    refused = run_module('datadir_restore', dict(db_args, src=repo, dest=dest))
    assert refused['failed'] and 'not empty' in refused['msg'] and not refused['changed'], refused
    assert snapshot(dest) == before

    planned = run_module('datadir_restore', dict(db_args, src=repo, dest=dest, state='replaced'), check=True, diff=True)
    assert planned['changed'] and planned['diff']['after']['restored_increment'] == made['increment_time'], planned
    assert snapshot(dest) == before

    replaced = run_module('datadir_restore', dict(db_args, src=repo, dest=dest, state='replaced'))
    assert replaced['changed'] and not replaced['failed'], replaced
    assert snapshot(dest, skip=(MARKER,)) == expected
    assert snapshot(replaced['replaced_path']) == before
    with open(os.path.join(dest, MARKER)) as handle:
        assert json.load(handle)['increment_time'] == made['increment_time']

    again = run_module('datadir_restore', dict(db_args, src=repo, dest=dest, state='replaced'), diff=True)
    assert not again['changed'] and not again['failed'], again


def test_datadir_restore_refuses_uuid_mismatch(sandbox, tmp_path):
    """A data dir whose repository uuid is not the database's must not be restored for it."""
    copy = str(tmp_path / 'other-OMERO')
    subprocess.check_call(['cp', '-a', sandbox['datadir'], copy])
    repository = os.path.join(copy, '.omero', 'repository')
    os.rename(os.path.join(repository, sandbox['db_uuid']), os.path.join(repository, 'b6c2e0a4-1111-4222-8333-944455556666'))
    repo = str(tmp_path / 'repo')
    made = run_module('datadir_backup', {'src': copy, 'dest': repo, 'verify': False})
    assert made['changed'] and not made['failed'], made
    dest = str(tmp_path / 'OMERO')
    mismatch = run_module('datadir_restore', dict(connection_args(sandbox), src=repo, dest=dest))
    assert mismatch['failed'] and 'UUID MISMATCH' in mismatch['msg'] and mismatch['uuid_match'] is False, mismatch
    assert not os.path.exists(dest)


def test_datadir_backup_second_concurrent_run_refused(sandbox, tmp_path):
    repo = str(tmp_path / 'repo')
    holder = hold_lock(lock_file_for(repo))
    try:
        refused = run_module('datadir_backup', {'src': sandbox['datadir'], 'dest': repo})
    finally:
        holder.kill()
        holder.wait()
    assert refused['failed'] and 'already running' in refused['msg'] and not refused['changed'], refused
    assert not os.path.exists(repo)


def test_datadir_backup_bad_input_changes_nothing(tmp_path):
    relative = run_module('datadir_backup', {'src': str(tmp_path), 'dest': 'backup::relative/path'})
    assert relative['failed'] and 'must be absolute' in relative['msg']
    assert sorted(os.listdir(str(tmp_path))) == []
