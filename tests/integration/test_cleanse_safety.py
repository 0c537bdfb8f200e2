# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cleanse against a hostile data dir owner, a full quarantine filesystem and odd file names (issue 12, items 7, 8, 9).

Real PostgreSQL sandboxes, real files, the real unprivileged user `nobody`, and
for the full filesystem a real 64 KiB tmpfs. The only thing injected is the
moment of the attack in the symlink-swap test: a wrapper around the removal
phase that lets `nobody` swap a directory after the walk and before the
removal, where a real attacker would race for it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import pwd
import stat
import subprocess
import sys
import time

import pytest
from helpers.ansible import collections_path, run_module
from test_cleanse import _connect, _db_args as cleanse_args

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.cleanse import database as cleanse_database  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.cleanse import remove as cleanse_remove  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import id_to_relpath  # noqa: E402

OLD = time.time() - 30 * 86400
JOURNAL = '.omero-cleanse-journal'
TEMP_PREFIX = '.omero-backup-tmp.'


def _db_args(description, **extra):
    """test_cleanse's arguments with a short min_age and a wide id margin: some sandbox orphans sit far above max(id)
    by design."""
    args = dict(min_age='1h', max_id_margin=10 ** 12)
    args.update(extra)
    return cleanse_args(description, **args)


def _free_ids(description, table, count):
    """Ids below the table's highest (so no interlock fires) that have no row: orphans once a file carries them."""
    conn = _connect(description)
    try:
        with conn.cursor() as cursor:
            cursor.execute('SELECT max(id) FROM %s' % table)
            highest = cursor.fetchone()[0]
            cursor.execute('SELECT id FROM %s' % table)
            taken = set(row[0] for row in cursor.fetchall())
    finally:
        conn.close()
    free = []
    for object_id in range(highest - 1, 999, -1):
        if object_id not in taken:
            free.append(object_id)
            if len(free) == count:
                break
    return free


def _age(root, when=OLD):
    """Files and directories older than min_age, each directory with its own mtime, so a lost mtime shows."""
    for directory, dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(directory, name), (when, when), follow_symlinks=False)
    for number, (directory, dirs, files) in enumerate(sorted(os.walk(root), reverse=True)):
        os.utime(directory, ns=(int(when * 1e9), int(when * 1e9) - number * 1000003))


def _tree_state(root):
    """Every entry below root, by the bytes of its path: type/content, owner, group, mode, mtime in ns."""
    state = {}
    broot = os.fsencode(root)
    for directory, dirs, files in os.walk(broot):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                content = b'link:' + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                content = b'dir'
            else:
                with open(path, 'rb') as handle:
                    content = hashlib.sha256(handle.read()).hexdigest().encode()
            state[os.path.relpath(path, broot)] = (content, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return state


def _chown_tree(root, user):
    account = pwd.getpwnam(user)
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(directory, name), account.pw_uid, account.pw_gid)
    os.chown(root, account.pw_uid, account.pw_gid)


def _as_nobody(code, *args):
    subprocess.run(['runuser', '-u', 'nobody', '--', sys.executable, '-c', code] + list(args), check=True)


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of the given size (root only); unmounted at the end."""
    mounted = []

    def mount(name, size):
        path = str(tmp_path / name)
        os.makedirs(path)
        proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0700' % size, 'tmpfs', path],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if proc.returncode != 0:
            pytest.skip('cannot mount a tmpfs here: %s' % proc.stdout.strip())
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(['umount', path], check=False)


# ------------------------------------------------------------------ item 8: a Dir-NNN swapped for a symlink

SWAP = '''
import os, sys
directory, victim = sys.argv[1], sys.argv[2]
os.rename(directory, directory + '.walked')
os.symlink(victim, directory)
'''


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root: the cleanse runs as root, the attacker as nobody')
@pytest.mark.parametrize('mode', ['delete', 'quarantine'])
def test_dir_swapped_for_a_symlink_after_the_walk_deletes_nothing_outside_the_data_dir(sandbox_factory, tmp_path,
                                                                                       monkeypatch, mode):
    description = sandbox_factory(objects=40, orphans=10, seed=12, omero_cli=False)
    datadir = description['datadir']
    # The data dir belongs to the OMERO system user; here that is the real unprivileged nobody.
    _chown_tree(datadir, 'nobody')
    _age(datadir)
    nested = sorted(relpath for relpath in description['orphans'] if relpath.count('/') >= 2)
    target = nested[0]
    swapped_dir, orphan_name = target.rsplit('/', 1)
    # Outside the data dir, root's: a file named like the orphan id, and its neighbour.
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / orphan_name).write_bytes(b'not the data dir')
    os.utime(str(victim / orphan_name), (OLD, OLD))
    walked_dir = os.path.join(datadir, swapped_dir)
    before_in_walked = _tree_state(walked_dir)

    original_apply = cleanse_remove.apply

    def swap_then_apply(*args, **kwargs):
        # Between the walk and the removal: nobody swaps the walked Dir-NNN for a symlink to root's directory.
        _as_nobody(SWAP, walked_dir, str(victim))
        return original_apply(*args, **kwargs)

    monkeypatch.setattr(cleanse_database, 'apply', swap_then_apply)
    params = _db_args(description, db=description['postgres']['dbname'], max_listed=100, subdirectories=None,
                      quarantine_dir=str(tmp_path / 'quarantine') if mode == 'quarantine' else None)
    result = cleanse_database.cleanse_database(params, check_mode=False)

    assert (victim / orphan_name).read_bytes() == b'not the data dir'
    assert os.listdir(str(victim)) == [orphan_name]
    # The walked directory itself (moved aside by nobody) was not touched either: skipped whole, and reported.
    assert _tree_state(walked_dir + '.walked') == before_in_walked
    assert any(error.startswith(swapped_dir) and 'no longer a directory' in error for error in result['errors']), \
        result['errors']
    # Everything else went as usual.
    others = [relpath for relpath in description['orphans'] if not relpath.startswith(swapped_dir + '/')]
    assert result['removed'] == len(others)
    for relpath in others:
        assert not os.path.lexists(os.path.join(datadir, relpath))
    if mode == 'quarantine':
        assert not os.path.lexists(os.path.join(str(tmp_path / 'quarantine'), target))


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root: the cleanse runs as root, the attacker as nobody')
def test_a_root_symlinked_by_the_data_dir_owner_to_another_users_directory_is_refused(sandbox_factory, tmp_path):
    """Pixels/ may be a symlink to a bigger volume, but one the data dir's owner points at root's files is not followed."""
    description = sandbox_factory(objects=30, orphans=6, seed=17, omero_cli=False)
    datadir = description['datadir']
    _chown_tree(datadir, 'nobody')
    _age(datadir)
    victim = tmp_path / 'victim'  # root's, numbered files, as a PostgreSQL data directory has
    victim.mkdir()
    for name in ('998', '1259', '2619'):
        (victim / name).write_bytes(b'root data')
        os.utime(str(victim / name), (OLD, OLD))
    pixels = os.path.join(datadir, 'Pixels')
    _as_nobody(SWAP, pixels, str(victim))
    result = run_module('cleanse', _db_args(description))
    assert sorted(os.listdir(str(victim))) == ['1259', '2619', '998']
    assert result['failed'] and 'symlink of uid %d' % pwd.getpwnam('nobody').pw_uid in result['msg'], result.get('msg')
    assert 'Nothing was removed' in result['msg']
    # A link root made (an admin putting Pixels on another volume) is followed as before.
    os.unlink(pixels)
    os.rename(pixels + '.walked', str(tmp_path / 'volume'))
    os.symlink(str(tmp_path / 'volume'), pixels)
    checked = run_module('cleanse', _db_args(description), check=True)
    assert not checked['failed'], checked.get('msg')
    assert checked['subdirectories']['Pixels']['entries'] > 0


# ------------------------------------------------------------------ item 9: quarantine and its undo

@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to mount a tmpfs and to own files as another user')
@pytest.mark.parametrize('where', ['same_filesystem', 'other_filesystem'])
def test_quarantine_and_undo_restore_owners_modes_and_mtimes_exactly(sandbox_factory, tmp_path, tmpfs, where):
    description = sandbox_factory(objects=50, orphans=10, seed=13, omero_cli=False)
    datadir = description['datadir']
    owner = pwd.getpwnam(description['omero_user'])
    assert owner.pw_uid != 0
    # Modes that differ from what the module would make by default.
    for directory, dirs, files in os.walk(os.path.join(datadir, 'Pixels')):
        os.chmod(directory, 0o2750)
        for name in files:
            if not os.path.islink(os.path.join(directory, name)):
                os.chmod(os.path.join(directory, name), 0o640)
    _age(datadir)
    before = _tree_state(datadir)
    if where == 'same_filesystem':
        quarantine = str(tmp_path / 'quarantine')
    else:
        quarantine = os.path.join(tmpfs('qfs', '32m'), 'q')
    args = _db_args(description, quarantine_dir=quarantine)

    result = run_module('cleanse', args)
    assert not result['failed'], (result.get('msg'), result.get('errors'))
    assert result['removed'] == len(description['orphans'])
    # Each quarantine directory has its data dir directory's owner and mode; the quarantine itself is the runner's 0700.
    for relpath in {orphan.rsplit('/', 1)[0] for orphan in description['orphans']}:
        info = os.stat(os.path.join(quarantine, relpath))
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == before[os.fsencode(relpath)][1:4], relpath
    assert stat.S_IMODE(os.stat(quarantine).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(quarantine, JOURNAL)).st_mode) == 0o600
    after_cleanse = _tree_state(datadir)
    in_quarantine = _tree_state(quarantine)

    undo = dict(args, state='restored')
    checked = run_module('cleanse', undo, check=True)
    assert not checked['failed'], (checked.get('msg'), checked.get('refused'))
    assert checked['changed'] and checked['restored'] == 0
    assert sorted(checked['listed']) == sorted(description['orphans'])
    assert _tree_state(datadir) == after_cleanse and _tree_state(quarantine) == in_quarantine

    restored = run_module('cleanse', undo)
    assert not restored['failed'], (restored.get('msg'), restored.get('refused'), restored.get('errors'))
    assert restored['changed'] and restored['restored'] == len(description['orphans'])
    assert _tree_state(datadir) == before
    assert os.listdir(quarantine) == []

    again = run_module('cleanse', undo)
    assert not again['failed'] and not again['changed']


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to mount a tmpfs')
def test_a_full_quarantine_filesystem_leaves_no_truncated_copy_and_keeps_the_original(sandbox_factory, tmpfs):
    description = sandbox_factory(objects=30, orphans=4, seed=14, omero_cli=False)
    datadir = description['datadir']
    quarantine = os.path.join(tmpfs('small', '64k'), 'q')
    big_id = _free_ids(description, 'originalfile', 1)[0]
    big = 'Files/' + id_to_relpath(big_id)
    path = os.path.join(datadir, big)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = os.urandom(256 * 1024)  # four times the filesystem
    with open(path, 'wb') as handle:
        handle.write(payload)
    _chown_tree(datadir, description['omero_user'])
    _age(datadir)
    before = _tree_state(datadir)

    result = run_module('cleanse', _db_args(description, quarantine_dir=quarantine))
    assert result['failed']
    assert any(error.startswith(big + ':') and 'No space left on device' in error for error in result['errors']), \
        result['errors']
    # No copy of it in the quarantine, neither at its final name nor at a temporary one; the original is whole.
    assert not os.path.lexists(os.path.join(quarantine, big))
    for directory, dirs, files in os.walk(quarantine):
        assert not [name for name in files if name.startswith(TEMP_PREFIX)], (directory, files)
    with open(path, 'rb') as handle:
        assert handle.read() == payload
    # What did fit is complete, and the undo brings the data dir back exactly.
    undo = run_module('cleanse', _db_args(description, quarantine_dir=quarantine, state='restored'))
    assert not undo['failed'], (undo.get('msg'), undo.get('refused'), undo.get('errors'))
    assert undo['restored'] == result['removed'] > 0
    assert _tree_state(datadir) == before


@pytest.mark.parametrize('damage', ['partial_copy', 'no_marker', 'size_mismatch', 'file_back_in_datadir',
                                    'symlinked_dir_in_datadir', 'extra_hard_link', 'quarantine_open_to_others'])
def test_the_undo_refuses_partial_copies_and_never_overwrites(sandbox_factory, tmp_path, damage):
    description = sandbox_factory(objects=40, orphans=8, seed=15, omero_cli=False)
    datadir = description['datadir']
    _age(datadir)
    quarantine = str(tmp_path / 'quarantine')
    args = _db_args(description, quarantine_dir=quarantine)
    result = run_module('cleanse', args)
    assert not result['failed'], (result.get('msg'), result.get('errors'))
    victim = sorted(relpath for relpath in description['orphans'] if relpath.count('/') >= 2)[0]
    victim_dir, victim_name = victim.rsplit('/', 1)
    if damage == 'partial_copy':
        # What a copy cut short by a crash leaves: a temporary name, the original still in the data dir.
        with open(os.path.join(quarantine, victim_dir, TEMP_PREFIX + '0123456789abcdef'), 'wb') as handle:
            handle.write(b'cut sh')
        expected = 'a partial copy'
    elif damage == 'no_marker':
        with open(os.path.join(quarantine, victim_dir, '999999999'), 'wb') as handle:
            handle.write(b'copied by hand')
        expected = 'no completion marker'
    elif damage == 'size_mismatch':
        with open(os.path.join(quarantine, victim), 'r+b') as handle:
            handle.truncate(max(0, os.fstat(handle.fileno()).st_size - 1))
        expected = 'partial or altered copy'
    elif damage == 'file_back_in_datadir':
        os.makedirs(os.path.join(datadir, victim_dir), exist_ok=True)
        with open(os.path.join(datadir, victim), 'wb') as handle:
            handle.write(b'written since the cleanse')
        expected = 'refusing to overwrite'
    elif damage == 'extra_hard_link':
        # A file with a second link is not what the cleanse left (a planted hard link to someone else's file).
        os.link(os.path.join(quarantine, victim), str(tmp_path / 'second-link'))
        expected = 'hard links'
    elif damage == 'quarantine_open_to_others':
        os.chmod(quarantine, 0o755)
        expected = 'must be 0700'
    else:
        elsewhere = tmp_path / 'elsewhere'
        elsewhere.mkdir()
        parent = os.path.join(datadir, victim_dir)
        if os.path.isdir(parent):
            os.rename(parent, parent + '.aside')
        os.symlink(str(elsewhere), parent)
        expected = 'no longer a directory'
    data_before, quarantine_before = _tree_state(datadir), _tree_state(quarantine)
    for check in (True, False):
        refused = run_module('cleanse', dict(args, state='restored'), check=check)
        assert refused['failed'] and not refused['changed']
        if damage == 'quarantine_open_to_others':
            assert expected in refused['msg'] and 'Nothing was changed' in refused['msg'], refused['msg']
        else:
            assert 'refusing to restore the quarantine, nothing was moved' in refused['msg']
            assert any(expected in reason for reason in refused['refused']), refused['refused']
        assert _tree_state(datadir) == data_before and _tree_state(quarantine) == quarantine_before
    if damage == 'symlinked_dir_in_datadir':
        assert os.listdir(str(tmp_path / 'elsewhere')) == []


# ------------------------------------------------------------------ item 7: names are bytes

def test_odd_names_are_reported_escaped_and_survive_quarantine_undo_and_removal(sandbox_factory, tmp_path):
    description = sandbox_factory(objects=40, orphans=4, seed=16, omero_cli=False)
    datadir = description['datadir']
    object_id = _free_ids(description, 'pixels', 1)[0]
    directory = os.path.dirname(os.path.join(datadir, 'Pixels', id_to_relpath(object_id)))
    bdir = os.fsencode(directory)
    os.makedirs(bdir, exist_ok=True)
    orphans = [b'.%d_pyramid\xff.tmp' % object_id, b'.%d_pyramid a b .tmp' % object_id,
               ('.%d_pyramid\u00e9t\u00e9.tmp' % object_id).encode('utf-8'), b'%d' % object_id]
    odd_kept = [b'\xffodd', b'new\nline', b'with blank ', 'na\u00efve'.encode('utf-8'), b'back\\slash\ttab']
    for name in orphans + odd_kept:
        with open(os.path.join(bdir, name), 'wb') as handle:
            handle.write(name)
    _age(datadir)
    before = _tree_state(datadir)
    reldir = os.path.relpath(directory, datadir)
    escaped = {reldir + '/' + shown for shown in ('.%d_pyramid\\xff.tmp' % object_id, '.%d_pyramid a b .tmp' % object_id,
                                                  '.%d_pyramid\u00e9t\u00e9.tmp' % object_id, '%d' % object_id)}
    escaped_kept = {reldir + '/' + shown for shown in ('\\xffodd', 'new\\nline', 'with blank ', 'na\u00efve',
                                                       'back\\\\slash\\ttab')}
    quarantine = str(tmp_path / 'quarantine')
    report = str(tmp_path / 'report.tsv')
    args = _db_args(description, quarantine_dir=quarantine, report_file=report, max_listed=1000)

    result = run_module('cleanse', args)
    assert not result['failed'], (result.get('msg'), result.get('errors'))
    assert escaped <= set(result['listed'])
    assert escaped_kept <= set(result['kept_unknown_listed'])
    assert result['removed'] == len(description['orphans']) + len(orphans)
    with open(report, 'rb') as handle:
        lines = handle.read().decode('utf-8').splitlines()
    assert len(lines) == result['removed']
    assert escaped <= {line.split('\t')[0] for line in lines}
    for name in orphans:
        assert os.path.exists(os.path.join(os.fsencode(quarantine), os.fsencode(reldir), name))
    for name in odd_kept:
        assert os.path.exists(os.path.join(bdir, name))

    undo = run_module('cleanse', dict(args, state='restored', report_file=None))
    assert not undo['failed'], (undo.get('msg'), undo.get('refused'), undo.get('errors'))
    assert escaped <= set(undo['listed'])
    assert _tree_state(datadir) == before

    removal = run_module('cleanse', _db_args(description, max_listed=1000))
    assert not removal['failed'], (removal.get('msg'), removal.get('errors'))
    assert escaped <= set(removal['listed'])
    for name in orphans:
        assert not os.path.lexists(os.path.join(bdir, name))
    for name in odd_kept:
        assert os.path.exists(os.path.join(bdir, name))
