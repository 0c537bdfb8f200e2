# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Granular restore (datadir_restore_paths) with real restic: one fileset resolved through the database, one
user's directory, a list of paths, into the live data dir and into a scratch dir; refusals of newer and
different files; names as bytes. One sandbox of this module's own (its database gets OMERO's fileset tables),
one restic repository, one backup; one rdiff-backup repository for the rdiff-backup paths test."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

import omero_sandbox
from helpers.ansible import collections_path, run_module
from helpers.sandbox import connection_args, query
from helpers.tree import snapshot

pytestmark = pytest.mark.skipif(not shutil.which('restic'), reason='restic is not installed')

ODD_NAME = b'caf\xe9 \n[1]*.tif'
PASSWORD = 'granular test password: not on argv'
SET_ID = 'set-20261203T101500Z-granular'


def managed_rows(description):
    """(id, path, name) of the sandbox's ManagedRepository files (not directories), by id."""
    return query(description, "SELECT id, path, name FROM public.originalfile WHERE repo = %s AND mimetype <> 'Directory' "
                              "ORDER BY id", (description['repositories']['managed'],))


def add_fileset_tables(description):
    """OMERO's fileset tables, filled the way an import fills them: one fileset per directory
    ``<user>_<id>/<yyyy-mm>/<dd>/<time>/`` of ManagedRepository, its import log ``<time>.log`` beside it,
    linked through a job. Returns {fileset id: (directory, [files], log)} relative to the data dir."""
    filesets, logs = {}, {}
    for file_id, path, name in managed_rows(description):
        parts = path.strip('/').split('/')
        if name.endswith('.log') and len(parts) == 3:
            logs['/'.join(parts) + '/' + name[:-4]] = (file_id, 'ManagedRepository/' + path + name)
        elif len(parts) >= 4:
            filesets.setdefault('/'.join(parts[:4]), []).append((file_id, 'ManagedRepository/' + path + name))
    statements = ['CREATE TABLE public.fileset (id bigint PRIMARY KEY, templateprefix text NOT NULL)',
                  'CREATE TABLE public.filesetentry (id bigint PRIMARY KEY, fileset bigint NOT NULL, originalfile bigint NOT NULL)',
                  'CREATE TABLE public.filesetjoblink (id bigint PRIMARY KEY, parent bigint NOT NULL, child bigint NOT NULL)',
                  'CREATE TABLE public.joboriginalfilelink (id bigint PRIMARY KEY, parent bigint NOT NULL, child bigint NOT NULL)']
    for statement in statements:
        query(description, statement)
    made = {}
    for number, directory in enumerate(sorted(filesets), start=101):
        query(description, 'INSERT INTO public.fileset VALUES (%s, %s)', (number, directory + '/'))
        for entry, (file_id, relpath) in enumerate(filesets[directory]):
            query(description, 'INSERT INTO public.filesetentry VALUES (%s, %s, %s)', (number * 100 + entry, number, file_id))
        log = logs.get(directory)
        if log:
            query(description, 'INSERT INTO public.filesetjoblink VALUES (%s, %s, %s)', (number, number, number + 5000))
            query(description, 'INSERT INTO public.joboriginalfilelink VALUES (%s, %s, %s)', (number, number + 5000, log[0]))
        made[number] = ('ManagedRepository/' + directory, [relpath for file_id, relpath in filesets[directory]],
                        log[1] if log else None)
    return made


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """A sandbox with fileset tables, a file with an odd name in user-2's directory, one restic backup of it."""
    root = str(tmp_path_factory.mktemp('granular'))
    description = omero_sandbox.build(os.path.join(root, 'sandbox'), objects=30, orphans=6, seed=14)
    try:
        filesets = add_fileset_tables(description)
        datadir = description['datadir']
        user_dir = [name for name in os.listdir(os.path.join(datadir, 'ManagedRepository')) if name.startswith('user-2_')][0]
        odd = os.path.join(os.fsencode(datadir), b'ManagedRepository', os.fsencode(user_dir), ODD_NAME)
        with open(odd, 'wb') as handle:
            handle.write(b'odd name, kept byte for byte\n')
        password_file = os.path.join(root, 'restic-password')
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(PASSWORD + '\n')
        repo = os.path.join(root, 'restic-repo')
        started = time.time()
        made = backup_step({'engine': 'restic', 'src': datadir, 'dest': repo, 'password_file': password_file, 'label': SET_ID})
        print('restic backup of the sandbox: %.1f s' % (time.time() - started))
        assert made['changed'] and made['snapshot_id'], made
        yield {'description': description, 'datadir': datadir, 'repo': repo, 'password_file': password_file,
               'filesets': filesets, 'user_dir': 'ManagedRepository/' + user_dir, 'odd': odd, 'backed_up': snapshot(datadir),
               'root': root}
    finally:
        omero_sandbox.destroy(os.path.join(root, 'sandbox'))


def restic_args(site, **extra):
    args = {'engine': 'restic', 'src': site['repo'], 'dest': site['datadir'], 'password_file': site['password_file']}
    args.update(extra)
    return args


def timed(name, *args, **kwargs):
    started = time.time()
    result = run_module(name, *args, **kwargs)
    print('%s%s: %.2f s' % (name, ' (check mode)' if kwargs.get('check') else '', time.time() - started))
    return result


def _importable():
    path = collections_path()
    if path not in sys.path:
        sys.path.insert(0, path)


def backup_step(args):
    """The step datadir_backup wraps, in this process with a real runner (the backup is not under test here)."""
    _importable()
    from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
    from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir
    return backup_datadir(args, subprocess_runner)


def step(args, check_mode=False):
    """The step datadir_restore_paths wraps, in this process with a real runner: (result, message or None)."""
    _importable()
    from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
    from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
    from ansible_collections.omero.backup.plugins.module_utils.datadir.granular import restore_paths
    try:
        return restore_paths(args, subprocess_runner, check_mode=check_mode), None
    except OperationFailed as exc:
        return exc.result, str(exc)


def test_restic_granular_fileset_into_live_datadir(site):
    number, (directory, files, log) = sorted(site['filesets'].items())[1]
    datadir = site['datadir']
    expected = dict((path, entry) for path, entry in site['backed_up'].items()
                    if path == directory or path.startswith(directory + '/') or path == log)
    mtimes = dict((path, os.lstat(os.path.join(datadir, path)).st_mtime_ns) for path in files + [log])
    shutil.rmtree(os.path.join(datadir, directory))
    os.unlink(os.path.join(datadir, log))
    before = snapshot(datadir)
    args = restic_args(site, filesets=[number], db=site['description']['postgres']['dbname'])
    args.update(connection_args(site['description']))

    planned = timed('datadir_restore_paths', args, check=True, diff=True)
    assert planned['changed'] and not planned['failed'], planned
    assert snapshot(datadir) == before, 'check mode changed the data dir'
    assert planned['filesets'] == {str(number): [directory, log]}
    assert sorted(planned['restored']) == sorted(files + [log]) and planned['counts']['refused'] == 0
    assert planned['uuid_match'] is True and planned['db_uuid'] == site['description']['db_uuid']

    restored = timed('datadir_restore_paths', args)
    assert restored['changed'] and not restored['failed'], restored
    assert sorted(restored['restored']) == sorted(files + [log])
    after = snapshot(datadir)
    assert dict((path, after[path]) for path in expected) == expected
    assert dict((path, os.lstat(os.path.join(datadir, path)).st_mtime_ns) for path in files + [log]) == mtimes
    assert not [name for name in os.listdir(os.path.dirname(datadir)) if name.startswith('.omero-backup-restore.')]

    again, message = step(args)
    assert not again['changed'] and message is None, message
    assert again['counts']['skipped'] == len(files) + 1 and again['counts']['restored'] == 0


def test_restic_granular_refuses_newer_and_different_files(site):
    datadir = site['datadir']
    number, (directory, files, log) = sorted(site['filesets'].items())[0]
    newer, older, other = os.path.join(datadir, files[0]), os.path.join(datadir, log), os.path.join(datadir, 'Files', 'README')
    backup_content = dict((path, open(path, 'rb').read()) for path in (newer, older, other))
    for path in (newer, older, other):
        with open(path, 'ab') as handle:
            handle.write(b'changed after the backup\n')
    os.utime(older, (1, 1))   # changed, yet older than the backup's copy
    args = restic_args(site, paths=[directory, log, 'Files/README'])

    refused, message = step(dict(args, at=SET_ID))  # the backup named by its set id (the snapshot's tag)
    assert not refused['changed'] and message is None, message
    reasons = dict((item['path'], item['reason']) for item in refused['refused'])
    assert sorted(reasons) == sorted([files[0], log, 'Files/README'])
    assert 'newer in dest' in reasons[files[0]] and 'overwrite=newer' in reasons[log]
    assert any('refused' in warning for warning in refused['warnings'])
    assert open(newer, 'rb').read().endswith(b'changed after the backup\n')

    by_age, message = step(dict(args, overwrite='newer'))
    assert by_age['changed'] and by_age['replaced'] == [log], (by_age, message)
    assert open(older, 'rb').read() == backup_content[older]
    assert sorted(item['path'] for item in by_age['refused']) == sorted([files[0], 'Files/README'])

    forced = timed('datadir_restore_paths', dict(args, overwrite='always'))
    assert forced['changed'] and sorted(forced['replaced']) == sorted([files[0], 'Files/README']), forced
    for path in (newer, older, other):
        assert open(path, 'rb').read() == backup_content[path]


def test_restic_granular_user_dir_and_odd_name_into_scratch(site, tmp_path):
    scratch = str(tmp_path / 'scratch')
    user = site['user_dir'].split('/')[1].rsplit('_', 1)[0]
    args = restic_args(site, dest=scratch, users=[user], db=site['description']['postgres']['dbname'])
    args.update(connection_args(site['description']))
    restored = timed('datadir_restore_paths', args)
    assert restored['changed'] and not restored['failed'], restored
    assert restored['users'] == {user: site['user_dir']}
    odd_rel = os.fsencode(site['user_dir']) + b'/' + ODD_NAME
    shown = [name for name in restored['restored'] if base64.b64decode(restored['names_b64'].get(name, '')) == odd_rel]
    assert len(shown) == 1 and '\\xe9' in shown[0] and '\\n' in shown[0], restored['restored']
    with open(os.path.join(os.fsencode(scratch), odd_rel), 'rb') as handle:
        assert handle.read() == b'odd name, kept byte for byte\n'
    expected = dict((path, entry) for path, entry in site['backed_up'].items() if path.startswith(site['user_dir'] + '/'))
    got = snapshot(scratch)
    assert dict((path, got.get(path)) for path in expected) == expected
    assert sorted(os.listdir(scratch)) == ['ManagedRepository']
    # The directories above the user's come with the backup's owner and mode (restic restores them too).
    assert got['ManagedRepository'] == site['backed_up']['ManagedRepository']


def test_restic_granular_bad_requests_change_nothing(site):
    before = snapshot(site['datadir'])
    absent, message = step(restic_args(site, paths=['Files/no-such-file', 'Files/README']))
    assert message and 'does not hold Files/no-such-file' in message and absent['absent'] == ['Files/no-such-file'], absent
    for paths, expected in ((['Files/../../etc'], 'leaves the data dir'), (['.'], 'whole data dir'), (['/etc'], 'is absolute')):
        refused, message = step(restic_args(site, paths=paths))
        assert message and expected in message, (paths, message)
    unknown, message = step(dict(restic_args(site, filesets=[999999], db=site['description']['postgres']['dbname']),
                                 **connection_args(site['description'])))
    assert message and '999999 does not exist' in message, message
    assert snapshot(site['datadir']) == before


def test_rdiff_backup_granular_paths(site, tmp_path):
    repo = str(tmp_path / 'rdiff-repo')
    # rdiff-backup itself makes the repository: this test is about the restore.
    subprocess.run(['rdiff-backup', 'backup', '--exclude', os.path.join(site['datadir'], 'BioFormatsCache'), site['datadir'], repo],
                   check=True, stdout=subprocess.DEVNULL)
    scratch = str(tmp_path / 'scratch')
    os.mkdir(scratch)
    os.chmod(scratch, 0o751)
    number, (directory, files, log) = sorted(site['filesets'].items())[2]
    restored, message = step({'src': repo, 'dest': scratch, 'paths': [directory, 'Files/README']})
    assert message is None and restored['changed'], message
    assert sorted(restored['restored']) == sorted(files + ['Files/README'])
    assert [command[1] for command in restored['commands']] == ['restore', 'restore']
    expected = snapshot(site['datadir'])
    got = snapshot(scratch)
    assert dict((path, got[path]) for path in got if path.startswith(directory) or path == 'Files/README') == \
        dict((path, expected[path]) for path in got if path.startswith(directory) or path == 'Files/README')
    # The directories above the paths, which rdiff-backup does not restore, take the mode of dest's root.
    assert stat.S_IMODE(os.stat(os.path.join(scratch, 'ManagedRepository')).st_mode) == 0o751
