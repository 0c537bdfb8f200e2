# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File names are bytes: omero.backup.logs and omero.backup.log_dir through the real ansible CLI with log files
named in non-UTF-8, with blanks, UTF-8 and newlines, and with names that only look like rolled logs."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import gzip
import os
import subprocess
import time

from helpers.ansible import REPO_ROOT, VENV_BIN, ansible_env, run_module
# omerodir is a fixture: pytest uses it by its name.
from test_logs import omerodir  # noqa: F401 pylint: disable=unused-import

DAY = 86400
OLD = time.time() - 40 * DAY

# Rolled logs whose names are odd but that are rolled logs: compressed and deleted under their exact bytes.
ODD_ROLLED = [b'caf\xe9.log.1', b'Blitz 0 \xc3\xa9 .log.2', '\u65e5\u672c.log.1'.encode('utf-8'), b' lead.log.3']
# Names that look like rolled logs but are not: never touched.
NOT_ROLLED = [b'Blitz-0.log.7\n', 'Blitz-0.log.\u0667'.encode('utf-8'), b'new\nline.log.1', b'Blitz-0.log.3.xz',
              b'Blitz-0.log.\xd9\xa7.gz']


def _write(directory, name, data, mtime=OLD):
    path = os.path.join(os.fsencode(directory), name)
    with open(path, 'wb') as handle:
        handle.write(data)
    os.utime(path, (mtime, mtime))
    return path


def _files(directory):
    """bytes name -> content of every file in directory."""
    found = {}
    for name in os.listdir(os.fsencode(directory)):
        path = os.path.join(os.fsencode(directory), name)
        if os.path.isfile(path):
            with open(path, 'rb') as handle:
                found[name] = handle.read()
    return found


def _gunzip(path):
    with gzip.open(path, 'rb') as handle:
        return handle.read()


def _decoded(result, shown):
    """The exact bytes behind a name a result shows: from names_b64 when escaped, else the name itself."""
    if shown in result['names_b64']:
        return base64.b64decode(result['names_b64'][shown])
    return shown.encode('utf-8')


def test_logs_compress_then_delete_odd_names_keeps_lookalikes(tmp_path):
    logdir = str(tmp_path / 'log')
    os.mkdir(logdir)
    content = {}
    for name in ODD_ROLLED + NOT_ROLLED:
        content[name] = b'log text of %r\n' % name * 50
        _write(logdir, name, content[name])
    args = {'path': logdir, 'datadir': str(tmp_path / 'OMERO'), 'state': 'compressed'}

    compressed = run_module('logs', args)
    assert not compressed['failed'] and compressed['changed'], compressed
    after = _files(logdir)
    for name in NOT_ROLLED:
        assert after[name] == content[name], name
    files = [_decoded(compressed, shown) for report in compressed['logs'].values() for shown in report['files']]
    created = [_decoded(compressed, shown) for report in compressed['logs'].values() for shown in report['created']]
    assert sorted(files) == sorted(ODD_ROLLED)
    assert len(created) == len(ODD_ROLLED)
    for name in ODD_ROLLED:
        assert name not in after
        log = name.rsplit(b'.', 1)[0]
        made = [gz for gz in created if gz.startswith(log + b'.') and gz.endswith(b'Z.gz')]
        assert len(made) == 1 and made[0] in after, (name, created)
        assert _gunzip(os.path.join(os.fsencode(logdir), made[0])) == content[name]
    # Every shown name is printable and every escaped one decodes to a file that exists.
    assert 'caf\\xe9.log' in compressed['logs'] and compressed['names_b64']['caf\\xe9.log.1'] == base64.b64encode(b'caf\xe9.log.1').decode()
    for shown in compressed['names_b64']:
        assert shown.isprintable()

    again = run_module('logs', args)
    assert not again['failed'] and again['changed'] is False, again

    deleted = run_module('logs', dict(args, state='absent'))
    assert not deleted['failed'] and deleted['changed'], deleted
    gone = [_decoded(deleted, shown) for report in deleted['logs'].values() for shown in report['files']]
    assert sorted(gone) == sorted(created)
    assert _files(logdir) == dict((name, content[name]) for name in NOT_ROLLED)


def test_logs_absent_deletes_gz_made_by_gzip_and_compressed_leaves_it(tmp_path):
    """NAME.log.N.gz compressed by hand or by logrotate (gzip) is a rolled log: state=absent deletes it, and
    state=compressed leaves it, as ansible-doc and docs/logs.md both say."""
    logdir = str(tmp_path / 'log')
    os.mkdir(logdir)
    _write(logdir, b'Blitz-0.log.3', b'old\n' * 1000)
    subprocess.check_call(['gzip', os.path.join(logdir, 'Blitz-0.log.3')])
    _write(logdir, b'Blitz-0.log', b'live\n', mtime=time.time())
    assert sorted(os.listdir(logdir)) == ['Blitz-0.log', 'Blitz-0.log.3.gz']
    args = {'path': logdir, 'datadir': str(tmp_path / 'OMERO')}

    kept = run_module('logs', dict(args, state='compressed'))
    assert not kept['failed'] and kept['changed'] is False, kept
    assert kept['logs']['Blitz-0.log']['kept'] == ['Blitz-0.log.3.gz']

    deleted = run_module('logs', dict(args, state='absent', older_than='30d'))
    assert not deleted['failed'] and deleted['changed'], deleted
    assert deleted['logs']['Blitz-0.log']['files'] == ['Blitz-0.log.3.gz']
    assert sorted(os.listdir(logdir)) == ['Blitz-0.log']

    # The module's own documentation, as an operator reads it, and docs/logs.md say the same.
    doc = subprocess.run([os.path.join(VENV_BIN, 'ansible-doc'), 'omero.backup.logs'], env=ansible_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True).stdout
    flat = ' '.join(doc.split())
    assert 'NAME.log.N.gz' in flat and 'logrotate' in flat and 'only on' in flat
    with open(os.path.join(REPO_ROOT, 'docs', 'logs.md')) as handle:
        guide = handle.read()
    assert '| `NAME.log.N.gz` | logrotate, or by hand | left alone | deleted |' in guide


def test_log_dir_moves_odd_names_byte_exact(omerodir, sandbox, tmp_path):  # noqa: F811
    logdir = os.path.join(omerodir, 'var', 'log')
    live = [b'caf\xe9.log', b'Blitz 0 \xc3\xa9 .log']
    for name in live + ODD_ROLLED:
        _write(logdir, name, b'content of %r\n' % name)
    for name in NOT_ROLLED:
        _write(logdir, name, b'not a log %r\n' % name)
    before = _files(logdir)
    target = str(tmp_path / 'var-log-omero')
    result = run_module('log_dir', {'path': target, 'omerodir': omerodir, 'datadir': sandbox['datadir'],
                                    'user': sandbox['omero_user'], 'move_logs': True})
    assert not result['failed'] and result['changed'], result
    moved = _files(target)
    for name in live + ODD_ROLLED:
        assert moved[name] == before[name], name
    for name in NOT_ROLLED:
        assert name not in moved and _files(logdir)[name] == before[name]
    shown = [_decoded(result, name) for name in result['moved']]
    assert sorted(shown) == sorted(moved)
    assert 'caf\\xe9.log' in result['moved'] and result['names_b64']['caf\\xe9.log'] == base64.b64encode(b'caf\xe9.log').decode()
