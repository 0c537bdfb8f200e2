# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checksum proof (omero.backup.prove) on real files and a real PostgreSQL: a data dir backed up with the real
rdiff-backup and restored into scratch, then proven, damaged and proven again, and a budgeted proof resumed.

One sandbox and one restore for the module; the tests run in file order (the damage comes last).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

import omero_sandbox
from omero_sandbox.idpath import id_to_relpath
from helpers.ansible import collections_path, run_module
from helpers.sandbox import connection_args, query

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.datadir.restore import restore_datadir  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.proof import algorithms  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.proof.run import prove  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres  # noqa: E402

pytestmark = pytest.mark.skipif(not shutil.which('rdiff-backup'), reason='rdiff-backup is not installed')


def _ids(description, where):
    return [row[0] for row in query(description, 'SELECT id FROM originalfile WHERE %s ORDER BY id' % where)]


PROVABLE = ("(repo IS NULL OR repo = (SELECT hash FROM originalfile WHERE mimetype = 'Repository' AND name = 'ManagedRepository')) "
            "AND mimetype IS DISTINCT FROM 'Directory' AND mimetype IS DISTINCT FROM 'Repository'")


@pytest.fixture(scope='module')
def restored(tmp_path_factory):
    """(sandbox description, restored data dir): Murmur3 rows added, the data dir through rdiff-backup and back."""
    started = time.monotonic()
    root = str(tmp_path_factory.mktemp('proof'))
    description = omero_sandbox.build(os.path.join(root, 'sandbox'), objects=60, orphans=6, seed=16)
    # Two Files/ rows hashed with Murmur3 (the sandbox plans the standard library's algorithms only).
    for file_id, name in zip(_ids(description, "repo IS NULL AND mimetype IS DISTINCT FROM 'Repository'")[:2], ('Murmur3-32', 'Murmur3-128')):
        with open(os.path.join(description['datadir'], 'Files', id_to_relpath(file_id)), 'rb') as handle:
            digest = algorithms.hexdigest(name, handle.read())
        query(description, "UPDATE originalfile SET hash = %s, hasher = (SELECT id FROM checksumalgorithm WHERE value = %s) WHERE id = %s",
              (digest, name, file_id))
    store, scratch = os.path.join(root, 'store'), os.path.join(root, 'scratch', 'OMERO')
    os.makedirs(os.path.dirname(scratch), 0o700)
    subprocess.run(['rdiff-backup', 'backup', description['datadir'], store], check=True, capture_output=True)
    subprocess.run(['rdiff-backup', 'restore', '--at', 'now', store, scratch], check=True, capture_output=True)
    print('proof fixture: sandbox, rdiff-backup backup and restore in %.1f s' % (time.monotonic() - started))
    yield description, scratch
    omero_sandbox.destroy(os.path.join(root, 'sandbox'))


def _args(description, datadir, **extra):
    args = connection_args(description)
    args.update(datadir=datadir)
    args.update(extra)
    return args


def _prove(description, datadir, **extra):
    options = _args(description, datadir, **extra)
    conn = postgres.connect(options, options['db'])
    try:
        return prove(options, conn)
    finally:
        conn.close()


def test_proof_of_a_restored_tree_proves_every_file_by_its_algorithm(restored, tmp_path):
    description, scratch = restored
    state, report, metrics = (str(tmp_path / name) for name in ('proof.state', 'report.json', 'proof.prom'))
    result = run_module('prove', _args(description, scratch, state_file=state, report_file=report, metrics_file=metrics))
    assert not result['failed'], result.get('msg')
    provable = _ids(description, PROVABLE)
    assert result['counts']['proven'] == len(provable) and result['files'] == len(provable)
    assert result['ok'] and result['cycle_complete'] and result['stopped_by'] is None
    assert set(result['by_algorithm']) == set(algorithms.NAMES)
    assert all(counts['proven'] >= 1 for counts in result['by_algorithm'].values())
    assert result['dangling'] == [] and result['missing'] == []  # the in-place link's target came back too
    for path in (state, report):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(metrics) as handle:
        text = handle.read()
    assert 'omero_backup_proof_files{target="%s",algorithm="Murmur3-128",result="proven"} 1' % scratch in text
    assert 'omero_backup_proof_oldest_unproven_age_seconds' in text
    print('proof of %d files, %d bytes: %.3f s in the module' % (result['files'], result['bytes'], result['duration']))


def test_resumed_proof_finishes_exactly_where_it_stopped(restored, tmp_path):
    description, scratch = restored
    state = str(tmp_path / 'proof.state')
    provable = _ids(description, PROVABLE)
    sizes = dict(query(description, 'SELECT id, size FROM originalfile WHERE ' + PROVABLE))
    half = sum(sizes.values()) // 2
    first = _prove(description, scratch, state_file=state, max_bytes=half, jobs=2)
    assert first['stopped_by'] == 'bytes' and not first['cycle_complete']
    done = provable[:provable.index(first['last_id']) + 1]
    assert first['first_id'] == provable[0] and first['files'] == len(done) and first['cursor'] == first['last_id']
    assert sum(sizes[i] for i in done[:-1]) < half <= sum(sizes[i] for i in done)  # stops at the first file past the budget
    with open(state) as handle:
        saved = json.load(handle)
    assert saved['cursor'] == first['last_id'] and stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert first['oldest_unproven_age'] >= 0

    second = _prove(description, scratch, state_file=state, jobs=2)
    assert second['first_id'] == provable[len(done)] and second['last_id'] == provable[-1]
    assert first['files'] + second['files'] == len(provable)
    assert second['cycle_complete'] and second['cursor'] == 0 and second['cycle'] == 2
    assert second['cycle_counts']['proven'] == len(provable)

    third = _prove(description, scratch, state_file=state, max_bytes=1)
    assert third['first_id'] == provable[0] and third['files'] == 1  # a new cycle starts at the first file


@pytest.mark.skipif(not shutil.which('restic'), reason='restic is not installed')
def test_proof_of_a_restic_snapshot_restored_through_the_engine(restored, tmp_path):
    description, _scratch = restored
    started = time.monotonic()
    password_file = str(tmp_path / 'restic.pass')
    with open(password_file, 'w') as handle:
        handle.write('proof-test-restic-password\n')
    os.chmod(password_file, 0o600)
    repo, scratch = str(tmp_path / 'repo'), str(tmp_path / 'scratch' / 'OMERO')
    os.makedirs(os.path.dirname(scratch), 0o700)
    backup_datadir(dict(engine='restic', src=description['datadir'], dest=repo, password_file=password_file, verify=False,
                        verify_state_dir=str(tmp_path / 'state'), label='proof-set'), subprocess_runner)
    restore_datadir(dict(engine='restic', src=repo, dest=scratch, password_file=password_file, at='proof-set'), subprocess_runner)
    clean = _prove(description, scratch)
    assert clean['ok'] and clean['counts']['proven'] == len(_ids(description, PROVABLE))
    victim = os.path.join(scratch, 'Files', id_to_relpath(_ids(description, "repo IS NULL AND hasher = "
                                                                            "(SELECT id FROM checksumalgorithm WHERE value = 'MD5-128')")[0]))
    with open(victim, 'r+b') as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0x80]))
    damaged = _prove(description, scratch, fail_on_problems=False)
    assert damaged['counts']['mismatched'] == 1 and damaged['mismatched'][0]['algorithm'] == 'MD5-128'
    print('restic backup, engine restore and two proofs in %.1f s' % (time.monotonic() - started))


def test_damaged_restore_fails_with_every_bad_file(restored, tmp_path):
    description, scratch = restored
    managed = _ids(description, "repo IS NOT NULL AND mimetype NOT IN ('Directory', 'Repository') AND name LIKE '%.tif'")
    files = _ids(description, "repo IS NULL AND mimetype IS DISTINCT FROM 'Repository' AND hasher = "
                              "(SELECT id FROM checksumalgorithm WHERE value = 'CRC-32')")
    rows = dict((row[0], row[1:]) for row in query(description, 'SELECT id, path, name, hash, size FROM originalfile'))
    flipped = os.path.join(scratch, 'ManagedRepository', rows[managed[0]][0], rows[managed[0]][1])
    with open(flipped, 'r+b') as handle:
        handle.seek(17)
        byte = handle.read(1)
        handle.seek(17)
        handle.write(bytes([byte[0] ^ 0x01]))
    truncated = os.path.join(scratch, 'Files', id_to_relpath(files[0]))
    os.truncate(truncated, 10)
    deleted = os.path.join(scratch, 'ManagedRepository', rows[managed[1]][0], rows[managed[1]][1])
    os.unlink(deleted)
    unhashed = _ids(description, "repo IS NULL AND mimetype IS DISTINCT FROM 'Repository' AND hasher = "
                                 "(SELECT id FROM checksumalgorithm WHERE value = 'SHA1-160')")[0]
    query(description, 'UPDATE originalfile SET hash = NULL, hasher = NULL WHERE id = %s', (unhashed,))
    # The in-place import's source is gone: its link is dangling, reported, not a failure of the restore.
    link, target = sorted(description['symlinks'].items())[0]
    os.unlink(target)
    report = str(tmp_path / 'report.json')

    result = run_module('prove', _args(description, scratch, report_file=report, max_listed=1))
    assert result['failed'] and 'checksum proof failed' in result['msg']
    assert result['counts']['mismatched'] == 2 and result['counts']['missing'] == 1 and result['counts']['unhashed'] == 1
    assert [entry['path'] for entry in result['dangling']] == [link]
    with open(report) as handle:
        found = json.load(handle)
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
    mismatched = dict((entry['id'], entry) for entry in found['mismatched'])
    assert set(mismatched) == {managed[0], files[0]} and len(result['mismatched']) == 1  # max_listed bounds the task's list
    assert mismatched[managed[0]]['expected'] == rows[managed[0]][2]
    assert mismatched[managed[0]]['actual'] != rows[managed[0]][2] and mismatched[managed[0]]['algorithm'] == 'SHA1-160'
    assert mismatched[files[0]]['algorithm'] == 'CRC-32' and mismatched[files[0]]['size_actual'] == 10
    assert [entry['id'] for entry in found['missing']] == [managed[1]]
    assert found['missing'][0]['path'] == 'ManagedRepository/%s%s' % rows[managed[1]][:2]
    assert [entry['id'] for entry in found['unhashed']] == [unhashed]
