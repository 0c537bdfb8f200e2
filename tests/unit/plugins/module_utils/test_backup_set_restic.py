# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The set record's datadir component on restic: the set is named by its snapshot's label, the snapshot and its
repository complete it, and retention removes exactly the records of the snapshots restic forgot."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils import backup_set
from ansible_collections.omero.backup.plugins.module_utils.backup_set import Options
from ansible_collections.omero.backup.plugins.module_utils.backup_set.schema import problems_of, set_id_for, validate_component

SNAPSHOT = '4bd8f1d2a6c34e0f9b1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778'


def restic_datadir(label, epoch, snapshot=SNAPSHOT):
    return {'src': '/OMERO', 'store': 'sftp:store:/srv/backup/omero/restic', 'engine': 'restic',
            'repository': 'sftp:store:/srv/backup/omero/restic', 'snapshot_id': snapshot, 'label': label,
            'increment_time': '2026-12-03T10:15:%02dZ' % (epoch % 60), 'increment_epoch': epoch, 'changed': True}


def present(store, label, epoch):
    return Options(state='present', store_path=str(store), server_host='omero', database_host='db', store_host='store',
                   backup_dir='/var/lib/omero-backup/staging/omero-staging-omero.backup-set', dbname='omero',
                   consistent=False,
                   config={'path': '/var/lib/omero-backup/staging/omero-staging-omero.backup-set/config/omero.config',
                           'sha256': 'a' * 64, 'changed': True},
                   database={'host': 'db', 'path': '/var/lib/omero-backup/staging/omero-staging-omero.backup-set/database/x.pg_dump',
                             'files': ['x.pg_dump'], 'sha256': 'b' * 64, 'changed': True},
                   datadir=restic_datadir(label, epoch))


def names(store):
    return sorted(os.listdir(str(store / 'sets')))


@pytest.fixture
def store(tmp_path):
    path = tmp_path / 'store'
    path.mkdir(mode=0o700)
    return path


def test_a_restic_set_is_named_by_the_label_its_snapshot_carries():
    assert set_id_for(restic_datadir('2026-12-03T101500Z', 1796292959), 0) == '2026-12-03T101500Z'
    # Without a label (rdiff-backup), the increment's time names it, as before.
    assert set_id_for({'increment_time': '2026-12-03T10:15:59Z'}, 0) == '2026-12-03T101559Z'


def test_a_restic_component_needs_its_snapshot_and_repository():
    part = dict(restic_datadir('2026-12-03T101500Z', 1796292959), complete=True)
    del part['changed']
    whole = {'set_id': '2026-12-03T101500Z', 'format_version': 2, 'server_host': 'omero', 'backup_dir': '/b', 'dbname': 'omero',
             'components': ['datadir'], 'datadir': part, 'complete': True}
    assert problems_of(whole) == []
    del part['snapshot_id']
    assert problems_of(whole) == ['datadir.snapshot_id is missing (engine restic)']


def test_bad_restic_fields_are_named():
    problems = validate_component('datadir', {'engine': 'borg', 'snapshot_id': 'latest', 'label': '../x'})
    assert [problem.split(' must ')[0] for problem in problems] == ['datadir.engine', 'datadir.label', 'datadir.snapshot_id']


def test_pruning_by_set_ids_removes_only_those_and_never_the_newest_complete_set(store):
    for label, epoch in (('2026-12-01T101500Z', 1796120100), ('2026-12-02T101500Z', 1796206500), ('2026-12-03T101500Z', 1796292900)):
        backup_set.present(present(store, label, epoch), False, epoch + 60)
    assert names(store) == ['2026-12-01T101500Z.json', '2026-12-02T101500Z.json', '2026-12-03T101500Z.json', 'latest.json']

    # What restic forgot: the oldest, and (by mistake) the newest; the newest complete set stays whatever it is told.
    options = Options(state='pruned', store_path=str(store), set_ids=['2026-12-01T101500Z', '2026-12-03T101500Z', 'gone'])
    result = backup_set.prune(options, True, 1796293000)
    assert result['pruned'] == ['2026-12-01T101500Z'] and names(store)[0] == '2026-12-01T101500Z.json'  # check mode
    result = backup_set.prune(options, False, 1796293000)
    assert result['changed'] and result['pruned'] == ['2026-12-01T101500Z']
    kept = dict((entry['set_id'], entry['reason']) for entry in result['kept'])
    assert kept == {'2026-12-03T101500Z': 'the newest complete set', '2026-12-02T101500Z': 'not named in set_ids'}
    assert names(store) == ['2026-12-02T101500Z.json', '2026-12-03T101500Z.json', 'latest.json']
