# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After backup, disaster and restore: each host holds exactly what it held before the disaster."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest


def variables(host):
    return host.ansible.get_variables()


def groups(host):
    return variables(host).get('group_names', [])


def fingerprint_now(host, part):
    password = variables(host)['omero_backup_db_login_password']
    result = host.run("export PGPASS=%s; /usr/local/bin/molecule-fingerprint %s \"$PGPASS\"", password, part)
    assert result.rc == 0, result.stderr
    return result.stdout


def golden(host, part):
    return host.file('%s/%s.txt' % (variables(host)['molecule_golden_dir'], part)).content_string


@pytest.mark.parametrize('part', ['config', 'datadir'])
def test_server_host_parts_equal_the_originals(host, part):
    if 'omero_server' not in groups(host):
        pytest.skip('not the OMERO.server host')
    now = fingerprint_now(host, part)
    assert now == golden(host, part)
    if part == 'config':
        # the password came back, not eight stars
        assert 'omero.db.pass=%s' % variables(host)['omero_server_dbpassword'] in now


def test_database_equals_the_original(host):
    if 'omero_database' not in groups(host):
        pytest.skip('not the database host')
    assert fingerprint_now(host, 'database') == golden(host, 'database')


def test_store_holds_a_complete_set(host):
    if 'omero_backup_store' not in groups(host):
        pytest.skip('not the store host')
    path = variables(host)['omero_backup_store_path'] + '/sets/latest.json'
    manifest = host.file(path)
    assert manifest.mode == 0o600
    data = json.loads(manifest.content_string)
    assert data['complete'] is True
    assert list(data)[-1] == 'complete'
    assert data['database']['host'] == 'th-omero-db'
    assert data['datadir']['increment_time']


def test_status_and_metrics_keep_the_last_success_through_the_failed_backup(host):
    """The side effect's last backup failed (fault 1): the good set stays the last success, the failure is the last run,
    and the restore that finished the job is recorded under its own job."""
    if 'omero_server' not in groups(host):
        pytest.skip('not the OMERO.server host')
    status = json.loads(host.file('/var/lib/omero-backup/status.json').content_string)
    backup = status['jobs']['backup']
    assert backup['last_success']['set_id']
    assert backup['last_run']['state'] == 'failed' and backup['last_failure']['finished'] > backup['last_success']['finished']
    metrics = host.file('/var/lib/prometheus/node-exporter/omero_backup.prom').content_string
    assert 'omero_backup_last_success_timestamp_seconds{job="backup"}' in metrics
    assert 'omero_backup_last_run_success{job="backup"} 0' in metrics

    restore = status['jobs']['restore']
    assert restore['last_run']['state'] == 'succeeded' and restore['last_success']['set_id'] == backup['last_success']['set_id']
    assert {name: part['ok'] for name, part in restore['last_run']['components'].items()} == {'datadir': True}
    assert restore['last_failure']['error']  # fault 4, before the rerun
    restore_metrics = host.file('/var/lib/prometheus/node-exporter/omero_backup_restore.prom').content_string
    assert 'omero_backup_last_run_success{job="restore"} 1' in restore_metrics


def test_no_staging_left_behind(host):
    # Each run stages in a fresh directory under the root-owned 0700 parent and removes it; the faults' runs
    # that failed removed theirs too, and the next runs' preflight clears what a killed one would leave.
    parent = host.file('/var/lib/omero-backup/staging')
    if parent.exists:
        assert parent.is_directory and not parent.is_symlink
        assert parent.user == 'root' and parent.mode == 0o700
        assert host.run('find /var/lib/omero-backup/staging -mindepth 1').stdout == ''
    assert not host.file('/var/tmp/omero-restore').exists
