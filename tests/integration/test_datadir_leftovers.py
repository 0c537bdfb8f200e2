# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A datadir_restore killed with SIGKILL mid-copy leaves a full-size staging tree. Into a data dir that is a mount
point (a real tmpfs) the staging sits inside the data dir, where the next backup would store it. The next
datadir_backup or datadir_restore removes it under the data dir's lock, reports it, and no backup holds it."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from helpers.ansible import VENV_BIN, _unsafe_yaml, ansible_env, collections_path, run_module
from helpers.locks import hold_lock
from helpers.processes import kill_tree
from test_datadir_local import MARKER, backed_up, snapshot

pytestmark = pytest.mark.skipif(not shutil.which('rdiff-backup') or os.geteuid() != 0,
                                reason='needs rdiff-backup, and root to mount a tmpfs')

STAGING = '.omero-backup-restore.'
BULK_FILES = 4000
BULK_SIZE = 32 * 1024


def datadir_lock_path(datadir):
    import sys
    if collections_path() not in sys.path:
        sys.path.insert(0, collections_path())
    from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path as lock_path
    return lock_path(datadir)


@pytest.fixture
def mount_point(tmp_path):
    """An empty tmpfs mounted at a fresh directory: a data dir on its own filesystem, as /OMERO often is."""
    path = str(tmp_path / 'OMERO')
    os.mkdir(path)
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1g,mode=0755', 'omero-backup-test', path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if mounted.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % mounted.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(['umount', '-l', path], check=False)


@pytest.fixture
def big_repo(sandbox, tmp_path):
    """(data dir, repository): the sandbox's data dir plus a bulk of files, enough that a restore takes seconds."""
    source = str(tmp_path / 'source')
    subprocess.check_call(['cp', '-a', sandbox['datadir'], source])
    bulk = os.path.join(source, 'Files', 'bulk')
    os.makedirs(bulk)
    block = os.urandom(BULK_SIZE)
    for index in range(BULK_FILES):
        with open(os.path.join(bulk, '%05d' % index), 'wb') as handle:
            handle.write(block[index % 97:] + block[:index % 97])
    repo = str(tmp_path / 'repo')
    made = run_module('datadir_backup', {'src': source, 'dest': repo, 'verify': False})
    assert made['changed'] and not made['failed'], made
    return source, repo


def staging_trees(datadir):
    return sorted(name for name in os.listdir(datadir) if name.startswith(STAGING))


def tree_bytes(path):
    return sum(os.lstat(os.path.join(root, name)).st_size for root, dirs, files in os.walk(path) for name in files)


def kill_restore_mid_copy(repo, dest, tmp_path):
    """Start a real datadir_restore (state=replaced) through ansible-playbook and SIGKILL it with every process
    below it (the module, rdiff-backup) once the staging tree holds part of the bulk; returns the staging name."""
    if os.path.exists(os.path.join(dest, MARKER)):
        os.unlink(os.path.join(dest, MARKER))  # else the restore sees its own backup in place and does nothing
    workdir = tempfile.mkdtemp(prefix='kill-restore-', dir=str(tmp_path))
    playbook = os.path.join(workdir, 'restore.yml')
    with open(playbook, 'w') as handle:
        handle.write('- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n'
                     '    - omero.backup.datadir_restore: %s\n'
                     % _unsafe_yaml({'src': repo, 'dest': dest, 'state': 'replaced'}))
    proc = subprocess.Popen([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', playbook], cwd=workdir,
                            env=ansible_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = None
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            names = staging_trees(dest)
            if names:
                bulk = os.path.join(dest, names[0], 'Files', 'bulk')
                if os.path.isdir(bulk) and len(os.listdir(bulk)) >= BULK_FILES // 10:
                    found = names[0]
                    break
            time.sleep(0.02)
    finally:
        killed = kill_tree(proc.pid)
        proc.wait()
    # Nothing of the killed tree may still write when the next run starts.
    for pid in killed:
        while os.path.exists('/proc/%d' % pid) and not _zombie(pid):
            time.sleep(0.05)
    assert found, 'the restore finished (rc %s) before it could be killed mid-copy: make BULK_FILES larger' % proc.returncode
    assert len(os.listdir(os.path.join(dest, found, 'Files', 'bulk'))) < BULK_FILES
    return found


def _zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def rdiff_listing(repo):
    return subprocess.run(['rdiff-backup', 'list', 'files', repo], stdout=subprocess.PIPE, check=True,
                          universal_newlines=True).stdout.splitlines()


def test_killed_restore_leftover_removed_by_next_backup_and_restore(big_repo, mount_point, tmp_path):
    source, repo = big_repo
    expected = backed_up(source)
    first = run_module('datadir_restore', {'src': repo, 'dest': mount_point})
    assert first['changed'] and not first['failed'] and first['staging'].startswith('inside dest'), first

    # 1. Killed mid-copy: the staging tree stays inside the mount point.
    leftover = kill_restore_mid_copy(repo, mount_point, tmp_path)
    leftover_bytes = tree_bytes(os.path.join(mount_point, leftover))
    assert leftover_bytes > BULK_FILES // 10 * BULK_SIZE

    # The next backup takes the data dir's lock, removes it, says so, and the repository never holds it.
    repo2 = str(tmp_path / 'repo2')
    made = run_module('datadir_backup', {'src': mount_point, 'dest': repo2})
    assert made['changed'] and not made['failed'], made
    assert not [line for line in rdiff_listing(repo2) if STAGING in line]
    assert staging_trees(mount_point) == []
    assert made['leftovers'] == [os.path.join(mount_point, leftover)] and made['leftovers_bytes'] == leftover_bytes, made
    assert any('restore leftover' in warning for warning in made['warnings_list'])
    assert snapshot(mount_point, skip=(MARKER,)) == expected

    # 2. Killed again: the next restore removes the leftover under the lock, then restores.
    leftover = kill_restore_mid_copy(repo, mount_point, tmp_path)
    restored = run_module('datadir_restore', {'src': repo, 'dest': mount_point, 'state': 'replaced', 'keep_replaced': False})
    assert restored['changed'] and not restored['failed'], restored
    assert staging_trees(mount_point) == []
    assert restored['leftovers'] == [os.path.join(mount_point, leftover)] and restored['leftovers_bytes'] > 0, restored
    assert snapshot(mount_point, skip=(MARKER,)) == expected


def test_backup_excludes_leftovers_it_cannot_remove(big_repo, mount_point, tmp_path):
    """While another run holds the data dir's lock, a leftover stays, but the backup still leaves it out, and the
    old tree a restore kept (omero-backup-replaced-*) too."""
    source, repo = big_repo
    assert not run_module('datadir_restore', {'src': repo, 'dest': mount_point})['failed']
    planted = os.path.join(mount_point, STAGING + 'feedfacecafe.abcdefgh')
    kept_old = os.path.join(mount_point, 'omero-backup-replaced-2026-01-01T000000Z')
    for path in (planted, kept_old):
        os.makedirs(os.path.join(path, 'Files'))
        with open(os.path.join(path, 'Files', 'big'), 'wb') as handle:
            handle.write(b'x' * 4096)

    holder = hold_lock(datadir_lock_path(mount_point), 'cleanse')
    try:
        made = run_module('datadir_backup', {'src': mount_point, 'dest': str(tmp_path / 'repo2')})
    finally:
        holder.kill()
        holder.wait()
    assert made['changed'] and not made['failed'], made
    listing = rdiff_listing(str(tmp_path / 'repo2'))
    assert 'Files' in listing and not [line for line in listing if STAGING in line or 'omero-backup-replaced-' in line]
    assert made['leftovers'] == [] and os.path.isdir(planted)
    assert any('were not removed' in warning for warning in made['warnings_list']), made['warnings_list']
    assert any('not backed up: omero-backup-replaced-' in warning for warning in made['warnings_list'])

    planned = run_module('datadir_backup', {'src': mount_point, 'dest': str(tmp_path / 'repo3')}, check=True)
    assert planned['leftovers'] == [planted] and os.path.isdir(planted) and planned['changed'], planned
