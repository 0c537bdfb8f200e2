# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.logs and omero.backup.log_dir through the real ansible CLI on a copy of the sandbox's OMERODIR.

The session sandbox stays read-only: each test works on a copy of its OMERO.server directory
(grid descriptors and var/log with the rolled logs it generated, mtimes and owners kept).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import gzip
import hashlib
import os
import pwd
import shutil
import time

import pytest

from helpers.ansible import run_module
from omero_sandbox.omerodir import LOG_NAMES, ROTATED, ROTATED_AGE_DAYS

DAY = 86400
DESCRIPTORS = ('etc/templates/grid/default.xml', 'etc/templates/grid/windefault.xml', 'etc/grid/default.xml', 'etc/grid/windefault.xml')


def _copy_owned(source, target):
    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copy2)
    for root, dirs, files in os.walk(source):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            os.lchown(os.path.join(target, os.path.relpath(os.path.join(root, name), source)), st.st_uid, st.st_gid)


@pytest.fixture
def omerodir(sandbox, tmp_path):
    """A private copy of the sandbox's OMERODIR (etc and var/log are what these modules touch)."""
    copy = str(tmp_path / 'OMERO.server')
    os.makedirs(os.path.join(copy, 'var'))
    for rel in ('etc', 'var/log'):
        _copy_owned(os.path.join(sandbox['omerodir'], rel), os.path.join(copy, rel))
    return copy


def _state(directory):
    """name -> (sha256, mtime, uid) of every file in directory."""
    state = {}
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, 'rb') as handle:
                state[name] = (hashlib.sha256(handle.read()).hexdigest(), int(os.stat(path).st_mtime), os.stat(path).st_uid)
    return state


def _rolled(age_limit_days=None, keep=0):
    """Rolled file names the sandbox made, newest first per log, selected like the module should."""
    chosen = set()
    for name, count in ROTATED.items():
        for generation in range(1, count + 1):
            age = ROTATED_AGE_DAYS[generation - 1]
            if generation > keep and (age_limit_days is None or age > age_limit_days):
                chosen.add('%s.%d' % (name, generation))
    return chosen


def _read(omerodir, rel):
    with open(os.path.join(omerodir, rel), 'rb') as handle:
        return handle.read()


def test_compress_with_keep_leaves_exactly_the_expected_files(omerodir, sandbox):
    logdir = os.path.join(omerodir, 'var', 'log')
    before = _state(logdir)
    result = run_module('logs', {'omerodir': omerodir, 'datadir': sandbox['datadir'], 'state': 'compressed', 'keep': 1})
    assert not result['failed'], result.get('msg')
    assert result['changed'] is True
    assert result['path'] == logdir and result['path_source'] == 'etc/grid/default.xml'

    compressed = _rolled(keep=1)
    after = _state(logdir)
    assert set(before) - set(after) == compressed
    for name in set(before) - compressed:
        assert after[name] == before[name], name
    for name in LOG_NAMES:
        assert after[name] == before[name]
    created = set(after) - set(before)
    assert len(created) == len(compressed) and all(name.endswith('.gz') for name in created)
    for log, report in result['logs'].items():
        for original, gz_name in zip(report['files'], report['created']):
            path = os.path.join(logdir, gz_name)
            with gzip.open(path, 'rb') as handle:
                assert hashlib.sha256(handle.read()).hexdigest() == before[original][0]
            assert after[gz_name][1:] == before[original][1:], 'mtime and owner kept'
    assert result['bytes_freed'] == sum(r['bytes_freed'] for r in result['logs'].values()) > 0

    again = run_module('logs', {'omerodir': omerodir, 'datadir': sandbox['datadir'], 'state': 'compressed', 'keep': 1})
    assert again['changed'] is False and again['bytes_freed'] == 0
    assert _state(logdir) == after


def test_delete_with_keep_then_older_than_then_all(omerodir, sandbox):
    logdir = os.path.join(omerodir, 'var', 'log')
    sandbox_logdir = os.path.join(sandbox['omerodir'], 'var', 'log')
    before = _state(logdir)
    common = {'omerodir': omerodir, 'datadir': sandbox['datadir'], 'state': 'absent'}

    result = run_module('logs', dict(common, keep=2))
    assert not result['failed'], result.get('msg')
    assert set(before) - set(_state(logdir)) == _rolled(keep=2) == {'Blitz-0.log.3'}

    result = run_module('logs', dict(common, older_than='5d'))
    gone = _rolled(age_limit_days=5)
    assert set(before) - set(_state(logdir)) == gone and len(gone) > 1
    assert result['bytes_freed'] == sum(os.path.getsize(os.path.join(sandbox_logdir, n)) for n in gone - _rolled(keep=2))
    assert run_module('logs', dict(common, older_than='5d'))['changed'] is False

    result = run_module('logs', {'path': logdir, 'datadir': sandbox['datadir'], 'state': 'absent'})
    assert result['path_source'] == 'path'
    assert set(_state(logdir)) == set(LOG_NAMES)
    for name in LOG_NAMES:
        assert _state(logdir)[name] == before[name]


def test_check_mode_lists_and_changes_nothing(omerodir, sandbox):
    logdir = os.path.join(omerodir, 'var', 'log')
    before = _state(logdir)
    result = run_module('logs', {'omerodir': omerodir, 'datadir': sandbox['datadir'], 'state': 'absent'}, check=True, diff=True)
    assert result['changed'] is True
    listed = set(name for report in result['logs'].values() for name in report['files'])
    assert listed == _rolled()
    assert 'Blitz-0.log.3' in result['diff']['before'] and 'Blitz-0.log.3' not in result['diff']['after']
    assert _state(logdir) == before


def test_managed_repository_is_refused(sandbox, tmp_path):
    # Against the sandbox's own data dir in check mode (a refusal comes before any action) ...
    managed = os.path.join(sandbox['datadir'], 'ManagedRepository')
    result = run_module('logs', {'path': managed, 'datadir': sandbox['datadir'], 'state': 'absent'}, check=True)
    assert result['failed'] and 'ManagedRepository' in result['msg']
    # ... and for real on a copy holding a file that looks rolled.
    datadir = str(tmp_path / 'OMERO')
    shutil.copytree(sandbox['datadir'] + '/ManagedRepository', datadir + '/ManagedRepository', symlinks=True)
    some_dir = next(root for root, dirs, files in os.walk(datadir + '/ManagedRepository') if any(f.endswith('.log') for f in files))
    with open(os.path.join(some_dir, 'import.log.1'), 'w') as handle:
        handle.write('an import log is an OriginalFile\n')
    os.utime(os.path.join(some_dir, 'import.log.1'), (time.time() - 100 * DAY,) * 2)
    before = _state(some_dir)
    for path in (some_dir, datadir + '/ManagedRepository'):
        result = run_module('logs', {'path': path, 'datadir': datadir, 'state': 'absent'})
        assert result['failed'] and 'refusing' in result['msg'] and 'ManagedRepository' in result['msg']
    assert _state(some_dir) == before


def test_relocation_edits_every_descriptor_moves_logs_and_is_idempotent(omerodir, sandbox, tmp_path):
    target = str(tmp_path / 'var-log-omero')
    logdir = os.path.join(omerodir, 'var', 'log')
    logs_before = _state(logdir)
    texts_before = dict((rel, _read(omerodir, rel)) for rel in DESCRIPTORS)
    args = {'path': target, 'omerodir': omerodir, 'datadir': sandbox['datadir'], 'user': sandbox['omero_user'], 'move_logs': True}

    check = run_module('log_dir', args, check=True, diff=True)
    assert not check['failed'], check.get('msg')
    assert check['changed'] is True and check['descriptors'] == list(DESCRIPTORS)
    assert dict((rel, _read(omerodir, rel)) for rel in DESCRIPTORS) == texts_before and not os.path.exists(target)
    xml_diffs = [d for d in check['diff'] if d.get('before_header') == 'etc/grid/default.xml']
    assert 'value="var/log/"' in xml_diffs[0]['before'] and 'value="%s/"' % target in xml_diffs[0]['after']

    result = run_module('log_dir', args)
    assert not result['failed'], result.get('msg')
    assert result['changed'] is True and result['created'] is True
    for rel in DESCRIPTORS:
        expected = texts_before[rel].replace(b'<variable name="OMERO_LOGS" value="var/log/"/>',
                                             b'<variable name="OMERO_LOGS" value="%s/"/>' % target.encode())
        assert expected != texts_before[rel] and _read(omerodir, rel) == expected, rel
    st = os.stat(target)
    assert pwd.getpwuid(st.st_uid).pw_name == sandbox['omero_user'] and st.st_mode & 0o777 == 0o750
    moved = _state(target)
    assert set(moved) == set(logs_before) - {'master.out', 'master.err'}
    for name, value in moved.items():
        assert value == logs_before[name]
    assert set(_state(logdir)) == {'master.out', 'master.err'}

    again = run_module('log_dir', args, diff=True)
    assert again['changed'] is False and again['descriptors'] == [] and again['moved'] == []

    # Housekeeping follows the relocated directory on its own.
    logs = run_module('logs', {'omerodir': omerodir, 'datadir': sandbox['datadir'], 'state': 'absent'})
    assert logs['path'] == target and set(_state(target)) == set(moved) - _rolled()


def test_malformed_descriptor_is_a_clear_error_and_nothing_changes(omerodir, sandbox, tmp_path):
    broken = os.path.join(omerodir, 'etc', 'templates', 'grid', 'default.xml')
    with open(broken, 'rb') as handle:
        text = handle.read()
    with open(broken, 'wb') as handle:
        handle.write(text.replace(b'</node>', b'', 1))
    texts_before = dict((rel, _read(omerodir, rel)) for rel in DESCRIPTORS)
    logs_before = _state(os.path.join(omerodir, 'var', 'log'))
    target = str(tmp_path / 'var-log-omero')
    result = run_module('log_dir', {'path': target, 'omerodir': omerodir, 'datadir': sandbox['datadir'],
                                    'user': sandbox['omero_user'], 'move_logs': True})
    assert result['failed'] is True
    assert 'etc/templates/grid/default.xml is not well-formed XML (line' in result['msg']
    assert dict((rel, _read(omerodir, rel)) for rel in DESCRIPTORS) == texts_before
    assert _state(os.path.join(omerodir, 'var', 'log')) == logs_before
    assert not os.path.exists(target)
