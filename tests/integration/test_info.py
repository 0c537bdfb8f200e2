# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.info through the real ansible CLI against a sandbox."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil

import pytest

from helpers.ansible import run_module
from helpers.sandbox import connection_args

TOP_LEVEL = ('Files', 'Pixels', 'Thumbnails', 'ManagedRepository', 'FullText', 'BioFormatsCache', 'backup', '.omero')


def info_args(sandbox, **overrides):
    args = connection_args(sandbox)
    args.update(datadir=sandbox['datadir'])
    args.update(overrides)
    return args


def server_major(bindir):
    return os.path.basename(os.path.dirname(bindir.rstrip('/')))


def test_reports_versions_schema_uuid_and_sizes(sandbox, tmp_path):
    result = run_module('info', info_args(sandbox, backup_dest=str(tmp_path)))
    assert not result['failed'], result.get('msg')
    assert result['changed'] is False
    postgres = result['postgres']
    assert postgres['reachable'] is True and postgres['error'] is None
    assert postgres['server_version'].split('.')[0] == server_major(sandbox['postgres']['bindir'])
    assert postgres['client_version'].split('.')[0].isdigit()
    assert postgres['database_bytes'] > 0
    assert result['omero'] == {'schema_version': 'OMERO5.4', 'schema_patch': 0, 'db_uuid': sandbox['db_uuid']}
    datadir = result['datadir']
    assert datadir['path'] == sandbox['datadir'] and datadir['exists'] is True
    assert datadir['repository_dir_exists'] is True
    assert set(TOP_LEVEL) <= set(datadir['sizes'])
    data_bytes = sum(os.path.getsize(os.path.join(sandbox['datadir'], p)) for p in sandbox['checksums'])
    assert datadir['total_bytes'] >= data_bytes
    pixels_bytes = sum(os.path.getsize(os.path.join(sandbox['datadir'], p)) for p in sandbox['checksums'] if p.startswith('Pixels/'))
    assert datadir['sizes']['Pixels'] >= pixels_bytes
    assert result['backup_dest']['path'] == str(tmp_path)
    assert 0 < result['backup_dest']['free_bytes'] <= shutil.disk_usage(str(tmp_path)).total


def test_owner_role_over_tcp_as_the_omero_user_in_check_mode(sandbox):
    args = info_args(sandbox, **connection_args(sandbox, via='tcp', role='owner'))
    result = run_module('info', args, check=True, become_user=sandbox['omero_user'])
    assert not result['failed'], result.get('msg')
    assert result['postgres']['reachable'] is True
    assert result['omero']['db_uuid'] == sandbox['db_uuid']
    assert result['datadir']['repository_dir_exists'] is True
    assert sandbox['postgres']['owner_password'] not in repr(result)


def test_data_dir_of_another_database_is_flagged(sandbox, tmp_path):
    stranger = tmp_path / 'OMERO'
    (stranger / '.omero' / 'repository' / 'some-other-uuid').mkdir(parents=True)
    result = run_module('info', info_args(sandbox, datadir=str(stranger)))
    assert result['datadir']['exists'] is True
    assert result['datadir']['repository_dir_exists'] is False


def test_missing_data_dir_and_sizes_off(sandbox, tmp_path):
    result = run_module('info', info_args(sandbox, datadir=str(tmp_path / 'absent')))
    assert result['datadir']['exists'] is False and result['datadir']['sizes'] == {}
    result = run_module('info', info_args(sandbox, datadir_sizes=False))
    assert result['datadir']['exists'] is True and result['datadir']['sizes'] == {}


def test_unreachable_database_is_reported_without_the_password(sandbox):
    password = 'wrong-{{ not_templated }}-pw'
    args = info_args(sandbox, **connection_args(sandbox, via='tcp', role='owner'))
    args['login_password'] = password
    result = run_module('info', args)
    assert result['postgres']['reachable'] is False
    assert result['postgres']['error']
    assert password not in repr(result)
    assert result['omero']['db_uuid'] is None
    assert result['datadir']['exists'] is True  # a host without its database still has a data dir to describe


@pytest.mark.parametrize('bad, message', [
    ({'bogus_option': 1}, 'Unsupported parameters'),
    ({'port': 'not-a-port'}, 'port'),
])
def test_bad_options_fail_clearly(sandbox, bad, message):
    result = run_module('info', info_args(sandbox, **bad))
    assert result['failed'] is True
    assert message in result['msg']


def test_database_false_measures_directories_only_without_postgres(tmp_path):
    # What the backup role asks of the store host: free space where the repository goes and whether it exists,
    # without a PostgreSQL server or client there (a socket that does not exist is never tried).
    store = tmp_path / 'store'
    args = dict(database=False, datadir=str(store), datadir_sizes=False, login_unix_socket=str(tmp_path / 'no-server'),
                backup_dest=str(store / 'datadir' / 'rdiff-backup-data'))
    absent = run_module('info', args)
    assert not absent['failed'], absent.get('msg')
    assert 'postgres' not in absent and 'omero' not in absent
    assert absent['datadir']['exists'] is False and absent['backup_dest']['exists'] is False
    assert 0 < absent['backup_dest']['free_bytes'] <= shutil.disk_usage(str(tmp_path)).total
    (store / 'datadir' / 'rdiff-backup-data').mkdir(parents=True)
    present = run_module('info', args, check=True)
    assert present['datadir']['exists'] is True and present['backup_dest']['exists'] is True
    assert present['changed'] is False
