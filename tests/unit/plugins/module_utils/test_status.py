# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils import status
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError


def params(tmp_path, **overrides):
    values = dict(status_file=str(tmp_path / 'status.json'), metrics_file=str(tmp_path / 'omero_backup.prom'),
                  job='backup', state='succeeded', started=1000.0, set_id='set-1',
                  components={'database': {'ok': True, 'bytes': 2048, 'duration': 3.5},
                              'datadir': {'ok': True, 'bytes': 10, 'duration': 1, 'skipped': True}},
                  error=None, details={}, mode='0644', owner=None, group=None)
    values.update(overrides)
    return values


def test_success_writes_status_and_metrics(tmp_path):
    result = status.record(params(tmp_path), now=1010.0)
    assert result['changed']
    written = json.loads((tmp_path / 'status.json').read_text())
    success = written['jobs']['backup']['last_success']
    assert success['duration'] == 10.0 and success['set_id'] == 'set-1'
    assert success['components']['datadir']['skipped'] is True
    metrics = (tmp_path / 'omero_backup.prom').read_text()
    assert 'omero_backup_last_success_timestamp_seconds{job="backup"} 1010.0' in metrics
    assert 'omero_backup_component_bytes{job="backup",component="database"} 2048' in metrics
    assert 'omero_backup_last_run_success{job="backup"} 1' in metrics
    assert oct(os.stat(str(tmp_path / 'status.json')).st_mode & 0o777) == '0o644'


def test_same_set_again_is_no_change(tmp_path):
    status.record(params(tmp_path), now=1010.0)
    before = (tmp_path / 'status.json').read_text()
    result = status.record(params(tmp_path, started=2000.0), now=2005.0)
    assert not result['changed']
    assert (tmp_path / 'status.json').read_text() == before


def test_failure_keeps_last_success_and_is_always_recorded(tmp_path):
    status.record(params(tmp_path), now=1010.0)
    failed = params(tmp_path, state='failed', set_id=None, error='store unreachable',
                    components={'datadir': {'ok': False}})
    assert status.record(failed, now=3000.0)['changed']
    assert status.record(failed, now=3100.0)['changed']
    written = json.loads((tmp_path / 'status.json').read_text())['jobs']['backup']
    assert written['last_success']['finished'] == 1010.0
    assert written['last_failure']['error'] == 'store unreachable'
    metrics = (tmp_path / 'omero_backup.prom').read_text()
    assert 'omero_backup_last_run_success{job="backup"} 0' in metrics
    assert 'omero_backup_last_failure_timestamp_seconds{job="backup"} 3100.0' in metrics
    assert 'omero_backup_component_success{job="backup",component="datadir"} 0' in metrics
    # sizes stay those of the last good set
    assert 'omero_backup_component_bytes{job="backup",component="database"} 2048' in metrics


def test_check_mode_writes_nothing(tmp_path):
    result = status.record(params(tmp_path), now=1010.0, check_mode=True)
    assert result['changed']
    assert not (tmp_path / 'status.json').exists()
    assert not (tmp_path / 'omero_backup.prom').exists()


def test_missing_metrics_file_is_restored_without_new_success(tmp_path):
    status.record(params(tmp_path), now=1010.0)
    (tmp_path / 'omero_backup.prom').unlink()
    assert status.record(params(tmp_path), now=1020.0)['changed']
    assert (tmp_path / 'omero_backup.prom').exists()


def test_jobs_are_kept_apart(tmp_path):
    status.record(params(tmp_path), now=1010.0)
    status.record(params(tmp_path, job='drill', set_id='set-1'), now=1020.0)
    written = json.loads((tmp_path / 'status.json').read_text())
    assert sorted(written['jobs']) == ['backup', 'drill']


@pytest.mark.parametrize('overrides, message', [
    ({'components': {'db': {'ok': True, 'size': 1}}}, 'unknown key'),
    ({'components': {'db': {'ok': True, 'bytes': 'many'}}}, 'must be a number'),
    ({'mode': 'rw-r--r--'}, 'octal'),
    ({'status_file': '/nonexistent-dir/sub/status.json'}, 'does not exist'),
])
def test_bad_input_is_refused_and_nothing_written(tmp_path, overrides, message):
    with pytest.raises(OmeroBackupError) as error:
        status.record(params(tmp_path, **overrides), now=1.0)
    assert message in str(error.value)
    assert os.listdir(str(tmp_path)) == []


def test_missing_metrics_directory_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(OmeroBackupError) as error:
        status.record(params(tmp_path, status_file=str(tmp_path / 'status' / 'status.json'),
                             metrics_file=str(tmp_path / 'textfile' / 'omero_backup.prom')), now=1.0)
    assert 'textfile' in str(error.value)
    assert os.listdir(str(tmp_path)) == []


def test_status_directory_is_made_one_level_deep(tmp_path):
    status_file = tmp_path / 'omero-backup' / 'status.json'
    checked = status.record(params(tmp_path, status_file=str(status_file)), now=1010.0, check_mode=True)
    assert checked['changed'] and checked['status_dir_created'] and not status_file.parent.exists()
    made = status.record(params(tmp_path, status_file=str(status_file)), now=1010.0)
    assert made['status_dir_created'] and status_file.exists()
    assert oct(os.stat(str(status_file.parent)).st_mode & 0o777) == '0o755'
    again = status.record(params(tmp_path, status_file=str(status_file)), now=1010.0)
    assert not again['status_dir_created']


def test_corrupt_status_file_is_replaced(tmp_path):
    (tmp_path / 'status.json').write_text('{"jobs": ')
    assert status.record(params(tmp_path), now=1010.0)['changed']
    assert json.loads((tmp_path / 'status.json').read_text())['format_version'] == 1


def test_label_values_are_escaped(tmp_path):
    status.record(params(tmp_path, job='back"up\n'), now=1010.0)
    metrics = (tmp_path / 'omero_backup.prom').read_text()
    assert 'job="back_up_"' in metrics
