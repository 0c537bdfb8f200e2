# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir backup and restore with the real rdiff-backup on small synthetic data dirs in temp dirs."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
# The restore step: its module holds the names the tests look at and patch (_staging_inside, _relpaths).
from ansible_collections.omero.backup.plugins.module_utils.datadir import leftovers, restore as datadir
from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir, scan_symlinks
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import DatadirError
from ansible_collections.omero.backup.plugins.module_utils.datadir.restore import restore_datadir, tree_fingerprint
from ansible_collections.omero.backup.plugins.module_utils.engines.rdiff_backup import exclude_globs
from ansible_collections.omero.backup.plugins.module_utils.base.locking import ExclusiveLock, datadir_lock_path
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import Location, lock_path
from helpers.tree import snapshot

pytestmark = pytest.mark.skipif(not shutil.which('rdiff-backup'), reason='rdiff-backup is not installed')

DB_UUID = '3f2c1e1a-0d7e-4a51-9a57-6f0a7c5d9e21'
IS_ROOT = os.geteuid() == 0


def make_datadir(root, outside):
    """A miniature /OMERO: repository markers, ids in Dir-NNN dirs, a stale lock, caches, links in and out."""
    files = {
        '.omero/repository/%s/repo_uuid' % DB_UUID: b'a1b2c3',
        '.omero/repository/%s/.lock' % DB_UUID: b'',
        'ManagedRepository/.omero/repository/%s/repo_uuid' % DB_UUID: b'd4e5f6',
        'ManagedRepository/.omero/repository/%s/.lock' % DB_UUID: b'',
        'ManagedRepository/user-2_3/2026-11/26/08-00-00.000/image.tif': os.urandom(3000),
        'ManagedRepository/user-2_3/2026-11/26/08-00-00.000.log': b'import log\n',
        'Pixels/Dir-001/1001': os.urandom(5000),
        'Pixels/Dir-001/1001_pyramid': os.urandom(700),
        'Pixels/12': os.urandom(100),
        'Files/7': b'attachment',
        'Thumbnails/12': os.urandom(64),
        'FullText/segments_2': b'lucene',
        'BioFormatsCache/ManagedRepository/.image.tif.bfmemo': os.urandom(900),
        'backup/omero.config': b'omero.db.name=omero\n',
    }
    for relpath, data in files.items():
        path = os.path.join(root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(data)
    os.chmod(os.path.join(root, 'backup/omero.config'), 0o600)
    os.chmod(os.path.join(root, 'Pixels/12'), 0o640)
    os.makedirs(os.path.join(root, 'DropBox'))
    os.makedirs(outside, exist_ok=True)
    with open(os.path.join(outside, 'inplace.tif'), 'wb') as handle:
        handle.write(b'in place')
    os.symlink(os.path.join(outside, 'inplace.tif'), os.path.join(root, 'ManagedRepository/user-2_3/inplace.tif'))
    os.symlink('../Pixels/12', os.path.join(root, 'Files/link-inside'))
    if IS_ROOT:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), 999 if name != 'omero.config' else 0, 999)
    return root


EXCLUDED = ('BioFormatsCache', '.omero/repository/%s/.lock' % DB_UUID,
            'ManagedRepository/.omero/repository/%s/.lock' % DB_UUID)


@pytest.fixture
def store(tmp_path):
    src = make_datadir(str(tmp_path / 'OMERO'), str(tmp_path / 'inplace'))
    os.makedirs(str(tmp_path / 'backup'))
    return {'src': src, 'repo': str(tmp_path / 'backup' / 'omero'), 'tmp': tmp_path}


def backup(store, **extra):
    params = dict(src=store['src'], dest=store['repo'], verify=True, exclude=None)
    params.update(extra)
    return backup_datadir(params, subprocess_runner)


def restore(store, dest, **extra):
    params = dict(src=store['repo'], dest=dest)
    params.update(extra)
    return restore_datadir(params, subprocess_runner)


def test_round_trip_tree_identical_after_damage(store):
    expected = snapshot(store['src'], skip=EXCLUDED)
    result = backup(store)
    assert result['changed'] and result['verified'] and not result['regressed']
    assert result['files'] > 20 and result['increments'] == 1 and result['increment_time'].endswith('Z')
    assert result['symlinks'] == {'total': 2, 'outside': 1, 'outside_dirs': [str(store['tmp'] / 'inplace')],
                                  'outside_dirs_truncated': False}
    assert any('point outside' in w for w in result['warnings'])
    repo_files = snapshot(store['repo'], skip=('rdiff-backup-data',))
    assert not any('BioFormatsCache' in p or p.endswith('/.lock') for p in repo_files)

    # Damage the live store: a corrupted pixel file, a deleted fileset, a lost repo_uuid.
    with open(os.path.join(store['src'], 'Pixels/Dir-001/1001'), 'r+b') as handle:
        handle.write(b'garbage')
    shutil.rmtree(os.path.join(store['src'], 'ManagedRepository/user-2_3/2026-11'))
    os.unlink(os.path.join(store['src'], '.omero/repository/%s/repo_uuid' % DB_UUID))

    refused_before = snapshot(store['src'])
    with pytest.raises(DatadirError, match='not empty'):
        restore(store, store['src'])
    assert snapshot(store['src']) == refused_before

    result = restore(store, store['src'], state='replaced')
    assert result['changed'] and result['replaced_path'] and os.path.isdir(result['replaced_path'])
    assert result['repository_uuids'] == [DB_UUID]
    restored = snapshot(store['src'], skip=(datadir.RESTORED_MARKER,))
    assert restored == expected
    assert snapshot(result['replaced_path']) == refused_before

    again = restore(store, store['src'], state='replaced')
    assert not again['changed'] and again['replaced_path'] is None
    marker = json.load(open(os.path.join(store['src'], datadir.RESTORED_MARKER)))
    assert marker['increment_epoch'] == result['increment_epoch'] and marker['repository'] == store['repo']


def test_restore_into_missing_dest_check_mode_and_idempotence(store):
    backup(store, verify=False)
    dest = str(store['tmp'] / 'restored')
    planned = restore_datadir(dict(src=store['repo'], dest=dest), subprocess_runner, check_mode=True)
    assert planned['changed'] and not os.path.exists(dest)
    assert planned['diff']['before']['state'] == 'missing'
    done = restore(store, dest)
    assert done['changed'] and done['dest_state'] == 'missing'
    assert snapshot(dest, skip=(datadir.RESTORED_MARKER,)) == snapshot(store['src'], skip=EXCLUDED)
    assert not restore(store, dest)['changed']
    assert not restore_datadir(dict(src=store['repo'], dest=dest), subprocess_runner, check_mode=True)['changed']
    # Once the restored tree changes, a plain restore refuses rather than hiding the change.
    with open(os.path.join(dest, 'Files/7'), 'ab') as handle:
        handle.write(b'+')
    with pytest.raises(DatadirError, match='not empty'):
        restore(store, dest)


def test_restore_refused_while_a_cleanse_holds_the_data_dir(store):
    """cleanse and datadir_restore take the same data dir lock (locking.datadir_lock_path)."""
    backup(store, verify=False)
    dest = str(store['tmp'] / 'restored')
    with ExclusiveLock(datadir_lock_path(dest), 'cleanse of %s' % dest):
        with pytest.raises(DatadirError, match='already running.*nothing changed'):
            restore(store, dest)
        assert not os.path.exists(dest)
        # Check mode takes no lock and still says what a restore would do.
        assert restore_datadir(dict(src=store['repo'], dest=dest), subprocess_runner, check_mode=True)['changed']
    done = restore(store, dest)
    assert done['changed'] and done['datadir_lock'] == datadir_lock_path(dest)


def test_restore_older_backup_with_at(store):
    first = backup(store, verify=False)
    time.sleep(1.1)
    with open(os.path.join(store['src'], 'Files/7'), 'wb') as handle:
        handle.write(b'second version')
    second = backup(store, verify=False)
    assert second['increments'] == 2 and second['previous_increment_time'] == first['increment_time']
    dest = str(store['tmp'] / 'old')
    result = restore(store, dest, at='1B')
    assert result['increment_epoch'] == first['increment_epoch']
    with open(os.path.join(dest, 'Files/7'), 'rb') as handle:
        assert handle.read() == b'attachment'


def test_backup_check_mode_changes_nothing(store):
    result = backup_datadir(dict(src=store['src'], dest=store['repo'], verify=True, exclude=None,
                                 keep_increments_for='8W'), subprocess_runner, check_mode=True)
    assert result['changed'] and result['commands'][0][1] == 'backup'
    assert not os.path.exists(store['repo'])


def test_skip_if_newer_than_and_retention(store):
    first = backup(store, verify=False)
    skipped = backup(store, skip_if_newer_than='1h')
    assert skipped['skipped'] and not skipped['changed'] and skipped['increment_time'] == first['increment_time']
    time.sleep(2.1)
    # rdiff-backup lists an older backup as an increment only when something changed since.
    with open(os.path.join(store['src'], 'Files/7'), 'ab') as handle:
        handle.write(b'+')
    second = backup(store, verify=False, keep_increments_for='1s')
    # The first backup is older than 1s and goes; the newest never does.
    assert second['pruned'] == [first['increment_time']] and second['increments'] == 1


def test_exclude_fulltext_warns(store):
    result = backup(store, verify=False, exclude_fulltext=True)
    assert any('reindex' in w for w in result['warnings'])
    assert not os.path.exists(os.path.join(store['repo'], 'FullText'))


def test_symlinks_outside_fail_refuses_before_writing(store):
    with pytest.raises(DatadirError, match='point outside'):
        backup(store, symlinks_outside='fail')
    assert not os.path.exists(store['repo'])


def test_refuses_bad_destinations(store, tmp_path):
    with pytest.raises(DatadirError, match='must not contain each other'):
        backup(store, dest=os.path.join(store['src'], 'backup', 'rdiff'))
    with pytest.raises(DatadirError, match='is the backup volume mounted'):
        backup(store, dest=str(tmp_path / 'not-mounted' / 'omero'))
    occupied = tmp_path / 'occupied'
    occupied.mkdir()
    (occupied / 'precious').write_text('x')
    with pytest.raises(DatadirError, match='not an rdiff-backup repository'):
        backup(store, dest=str(occupied))
    assert os.listdir(str(occupied)) == ['precious']
    with pytest.raises(DatadirError, match='does not exist'):
        backup(store, src=str(tmp_path / 'nothing'))
    with pytest.raises(DatadirError, match='may not leave it'):
        backup(store, exclude=['../etc'])
    with pytest.raises(DatadirError, match='ssh_key .* does not exist'):
        backup(store, dest='backup.example.org::/backup/omero', ssh_key=str(tmp_path / 'no-key'))


def test_concurrent_backup_refused(store):
    with ExclusiveLock(lock_path(Location(None, store['repo'])), 'datadir backup'):
        with pytest.raises(DatadirError, match='already running'):
            backup(store)
    assert not os.path.exists(store['repo'])


def test_corrupted_mirror_file_fails_verify(store):
    backup(store)
    with open(os.path.join(store['repo'], 'Files/7'), 'r+b') as handle:
        handle.write(b'ATTACH')
    with pytest.raises(DatadirError, match='verify of .* failed: 1 file') as failure:
        backup(store)
    assert failure.value.result['verified'] is False
    assert failure.value.result['corrupted_files'] == ['Files/7']


def test_failed_restore_leaves_old_store_intact(store):
    backup(store, verify=False)
    os.unlink(os.path.join(store['repo'], 'Pixels/12'))
    before = snapshot(store['src'])
    with pytest.raises(DatadirError, match='left as it was'):
        restore(store, store['src'], state='replaced')
    assert snapshot(store['src']) == before
    assert not [n for n in os.listdir(str(store['tmp'])) if n.startswith(datadir.STAGING_PREFIX)]


def test_verify_before_restore_refuses_damaged_backup(store):
    backup(store, verify=False)
    with open(os.path.join(store['repo'], 'Files/7'), 'r+b') as handle:
        handle.write(b'ATTACH')
    dest = str(store['tmp'] / 'x')
    with pytest.raises(DatadirError, match='nothing restored') as failure:
        restore(store, dest, verify=True)
    assert failure.value.result['corrupted_files'] == ['Files/7'] and not os.path.exists(dest)


def test_swap_inside_mount_point(store, monkeypatch):
    backup(store, verify=False)
    expected = snapshot(store['src'], skip=EXCLUDED)
    with open(os.path.join(store['src'], 'Files/7'), 'wb') as handle:
        handle.write(b'changed')
    monkeypatch.setattr(datadir, '_staging_inside', lambda dest: True)
    result = restore(store, store['src'], state='replaced')
    kept = result['replaced_path']
    assert kept.startswith(store['src'] + '/' + datadir.REPLACED_INSIDE_PREFIX)
    assert snapshot(store['src'], skip=(datadir.RESTORED_MARKER, os.path.basename(kept))) == expected
    assert not restore(store, store['src'], state='replaced')['changed']


def test_killed_backup_is_regressed_next_run(store):
    bulk = os.path.join(store['src'], 'Files', 'Dir-009')
    os.makedirs(bulk)
    for number in range(1200):
        with open(os.path.join(bulk, str(9000 + number)), 'wb') as handle:
            handle.write(b'v1 %d' % number)
        # rdiff-backup sees a change by size and whole-second mtime: v2 has the same
        # size, so v1 must be older than the second in which v2 is written.
        os.utime(os.path.join(bulk, str(9000 + number)), (time.time() - 120, time.time() - 120))
    backup(store, verify=False)
    expected_first = snapshot(store['src'], skip=EXCLUDED)
    for number in range(1200):
        with open(os.path.join(bulk, str(9000 + number)), 'wb') as handle:
            handle.write(b'v2 %d' % number)

    processes = []

    def runner(argv, env=None, data=None, cwd=None):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                env=dict(os.environ, **(env or {})))
        processes.append((argv, proc))
        out, err = proc.communicate()
        return proc.returncode, out, err

    errors = []

    def run():
        try:
            backup_datadir(dict(src=store['src'], dest=store['repo'], verify=False, exclude=None), runner)
        except DatadirError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    data_dir = os.path.join(store['repo'], 'rdiff-backup-data')
    deadline = time.time() + 30
    while time.time() < deadline:
        markers = [n for n in os.listdir(data_dir) if n.startswith('current_mirror.')]
        if len(markers) == 2:
            break
        time.sleep(0.02)
    time.sleep(0.2)
    backup_proc = [proc for argv, proc in processes if 'backup' in argv]
    assert backup_proc and backup_proc[0].poll() is None, 'the backup finished before it could be killed'
    backup_proc[0].kill()
    thread.join(60)
    assert errors and 'failed, no new increment' in str(errors[0])

    # The interrupted session is rolled back: the repository still restores the first backup exactly.
    result = backup(store)
    assert result['regressed'] and result['verified'] and result['increments'] == 2
    assert any('regressed' in w for w in result['warnings'])
    old = str(store['tmp'] / 'first')
    restore(store, old, at='1B')
    assert snapshot(old, skip=(datadir.RESTORED_MARKER,)) == expected_first
    new = str(store['tmp'] / 'second')
    restore(store, new)
    assert snapshot(new, skip=(datadir.RESTORED_MARKER,)) == snapshot(store['src'], skip=EXCLUDED)


def test_uuid_check_without_marker_refuses(store):
    os.unlink(os.path.join(store['src'], '.omero/repository/%s/repo_uuid' % DB_UUID))
    result = backup(store, verify=False)
    assert any('does not look like an OMERO data dir' in w for w in result['warnings'])
    with pytest.raises(DatadirError, match='holds no .omero/repository'):
        restore(store, str(store['tmp'] / 'x'))
    assert not os.path.exists(str(store['tmp'] / 'x'))


def test_db_uuid_unreachable_is_a_warning(store):
    backup(store, verify=False)
    result = restore(store, str(store['tmp'] / 'x'), db='omero', login_host=str(store['tmp']), port=1,
                     login_user='nobody', connect_timeout=2)
    assert result['changed'] and result['uuid_match'] is None
    assert any('not compared' in w for w in result['warnings'])


def test_symlinked_data_dir_and_repository(store):
    """/OMERO is often a link to the real volume: back up and restore the directory, keep the link."""
    link = str(store['tmp'] / 'OMERO-link')
    os.symlink(store['src'], link)
    repo_link = str(store['tmp'] / 'repo-link')
    os.symlink(os.path.dirname(store['repo']), repo_link)
    made = backup(store, src=link, dest=os.path.join(repo_link, 'omero'), verify=False)
    assert made['src'] == store['src'] and made['dest'] == store['repo']
    with open(os.path.join(store['src'], 'Files/7'), 'wb') as handle:
        handle.write(b'changed')
    result = restore(store, link, state='replaced')
    assert os.path.islink(link) and result['dest'] == store['src']
    with open(os.path.join(link, 'Files/7'), 'rb') as handle:
        assert handle.read() == b'attachment'


def test_helpers(store):
    links = scan_symlinks(store['src'])
    assert links['total'] == 2 and links['outside'] == 1
    assert exclude_globs('/data/[x]', ['a/**/b'], exclude_fulltext=True) == ['/data/\\[x\\]/a/**/b', '/data/\\[x\\]/FullText']
    first, count = tree_fingerprint(store['src'])
    os.utime(os.path.join(store['src'], 'Files/7'), (1, 1))
    assert tree_fingerprint(store['src'])[0] != first and count > 20


# Names are bytes ------------------------------------------------------------------------------------------------

ODD_NAMES = [b'caf\xe9', b'caf\xea', b'new\nline', b'new', b' lead', b'trail ', 'caf\u00e9'.encode('utf-8'),
             '\u65e5\u672c'.encode('utf-8'), b'cr\rx', b'a\xff\xfeb', b'\xed\xa0\x80', b'back\\slash']


def test_listing_lines_of_a_tree_equal_rdiff_backups_listing(tmp_path):
    from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import Rdiff, listing_lines
    src = os.path.join(os.fsencode(str(tmp_path)), b'src')
    os.makedirs(os.path.join(src, b'odd \xe9\ndir'))
    for name in ODD_NAMES:
        for directory in (src, os.path.join(src, b'odd \xe9\ndir')):
            with open(os.path.join(directory, name), 'wb') as handle:
                handle.write(name)
    repo = str(tmp_path / 'repo')
    subprocess.check_call(['rdiff-backup', 'backup', os.fsdecode(src), repo], stdout=subprocess.DEVNULL)
    rdiff = Rdiff(subprocess_runner)
    epoch = rdiff.increments(Location(None, repo))[-1]
    listed = rdiff.list_files(Location(None, repo), epoch)
    assert listed == listing_lines(datadir._relpaths(os.fsdecode(src)))
    # caf\xe9 and caf\xea both list as caf\ufffd: counted, the loss of either one is seen.
    assert listed['caf\ufffd'] == 2
    os.unlink(os.path.join(src, b'caf\xea'))
    os.unlink(os.path.join(src, b'odd \xe9\ndir', b'new\nline'))
    missing = listed - listing_lines(datadir._relpaths(os.fsdecode(src)))
    assert sorted(missing.elements()) == ['caf\ufffd', 'dir/new', 'line', 'odd \ufffd']


def test_restore_refuses_a_tree_missing_an_odd_name(store, monkeypatch):
    """The completeness check still catches a lost file whose name is not UTF-8 (another one lists the same)."""
    for name in (b'caf\xe9', b'caf\xea'):
        with open(os.path.join(os.fsencode(store['src']), b'Files', name), 'wb') as handle:
            handle.write(name)
    backup_datadir({'src': store['src'], 'dest': store['repo'], 'verify': False}, subprocess_runner)
    real_relpaths = datadir._relpaths

    def losing_one(root):
        return [relpath for relpath in real_relpaths(root) if relpath != b'Files/caf\xea']

    monkeypatch.setattr(datadir, '_relpaths', losing_one)
    dest = str(store['tmp'] / 'restored-odd')
    with pytest.raises(DatadirError) as refused:
        restore_datadir({'src': store['repo'], 'dest': dest}, subprocess_runner)
    assert 'incomplete (1 entries missing: Files/caf\ufffd)' in str(refused.value)
    assert refused.value.result['missing_entries'] == ['Files/caf\ufffd']
    assert not os.path.exists(dest)


def test_leftovers_belong_to_one_data_dir_only(tmp_path):
    """Two data dirs beside each other: each run removes only its own sibling staging trees, never the other's,
    and a staging tree named before the key is only reported."""
    parent = str(tmp_path)
    one, two = os.path.join(parent, 'OMERO'), os.path.join(parent, 'OMERO.x')
    for path in (one, two):
        os.mkdir(path)
    mine = datadir.staging_prefix(one) + 'abcd1234'
    theirs = datadir.staging_prefix(two) + 'abcd1234'
    old_style = datadir.STAGING_PREFIX + 'q1w2e3r4'
    for name in (mine, theirs, old_style):
        os.makedirs(os.path.join(parent, name, 'Files'))
    inside = os.path.join(one, datadir.STAGING_PREFIX + 'zz')
    os.makedirs(inside)
    ours, unknown = leftovers.find_leftovers(one)
    assert ours == [(one, datadir.STAGING_PREFIX + 'zz'), (parent, mine)]
    assert unknown == [os.path.join(parent, old_style)]
    result = {'warnings': [], 'changed': False}
    datadir.clean_leftovers(one, False, result)
    assert sorted(result['leftovers']) == sorted([inside, os.path.join(parent, mine)]) and result['changed']
    assert sorted(os.listdir(parent)) == sorted(['OMERO', 'OMERO.x', theirs, old_style])
    assert any(old_style in warning and 'remove it by hand' in warning for warning in result['warnings'])


def test_leftovers_stay_while_another_run_holds_the_lock(tmp_path):
    data = str(tmp_path / 'OMERO')
    leftover = os.path.join(data, datadir.STAGING_PREFIX + 'zz')
    os.makedirs(leftover)
    holder = ExclusiveLock(datadir_lock_path(data), 'datadir restore').acquire()
    try:
        result = {'warnings': [], 'changed': False}
        datadir.clean_leftovers(data, False, result)
    finally:
        holder.release()
    assert result['leftovers'] == [] and os.path.isdir(leftover) and not result['changed']
    assert any('were not removed' in warning and 'already running' in warning for warning in result['warnings'])


def test_leftover_still_named_by_a_running_process_is_kept(tmp_path):
    """An rdiff-backup that outlived its killed restore still writes into the staging tree named on its command
    line: that tree is not removed until the process has ended."""
    data = str(tmp_path / 'OMERO')
    leftover = os.path.join(data, datadir.STAGING_PREFIX + 'zz')
    os.makedirs(leftover)
    writer = subprocess.Popen([sys.executable, '-c', 'import sys, time; sys.stdout.write("up\\n"); sys.stdout.flush(); '
                               'time.sleep(60)', leftover], stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline() == b'up\n'
        result = {'warnings': [], 'changed': False}
        datadir.clean_leftovers(data, False, result)
        assert result['leftovers'] == [] and os.path.isdir(leftover)
        assert any('still name it' in warning and str(writer.pid) in warning for warning in result['warnings'])
    finally:
        writer.kill()
        writer.wait()
    result = {'warnings': [], 'changed': False}
    datadir.clean_leftovers(data, False, result)
    assert result['leftovers'] == [leftover] and not os.path.exists(leftover)
