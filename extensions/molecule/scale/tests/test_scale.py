# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After a restic backup, a retention run, the disaster and the restore: each host holds what it held before."""

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
        # the password came back out of the encrypted snapshot, not eight stars
        assert 'omero.db.pass=%s' % variables(host)['omero_server_dbpassword'] in now


def test_database_equals_the_original(host):
    if 'omero_database' not in groups(host):
        pytest.skip('not the database host')
    assert fingerprint_now(host, 'database') == golden(host, 'database')


def test_store_holds_one_complete_restic_set_in_an_encrypted_repository(host):
    """Retention forgot the first snapshot and pruned its record: one set left, named by its snapshot's tag; nothing of
    the config or the dump lies in clear on the store."""
    if 'omero_backup_store' not in groups(host):
        pytest.skip('not the store host')
    store = variables(host)['omero_backup_store_path']
    records = sorted(name for name in host.file(store + '/sets').listdir() if name != 'latest.json')
    assert len(records) == 1, records
    latest = host.file(store + '/sets/latest.json')
    assert latest.mode == 0o600
    data = json.loads(latest.content_string)
    assert data['complete'] is True and records == [data['set_id'] + '.json']
    assert data['datadir']['engine'] == 'restic'
    assert data['datadir']['snapshot_id']
    assert data['datadir']['repository'].startswith('sftp:')
    assert host.file(store + '/restic/config').exists
    assert not host.file(store + '/datadir').exists
    password = variables(host)['omero_server_dbpassword']
    assert host.run('grep -rl -- %s %s', password, store).stdout == ''


def test_no_staging_left_behind(host):
    # The backup's staged config and dump are removed at its end, the restore's staging too.
    parent = host.file('/var/lib/omero-backup/staging')
    if parent.exists:
        assert parent.is_directory and not parent.is_symlink
        assert parent.user == 'root' and parent.mode == 0o700
        assert host.run('find /var/lib/omero-backup/staging -mindepth 1').stdout == ''
